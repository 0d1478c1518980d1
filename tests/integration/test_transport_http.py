"""HttpTransport against a small aiohttp server written here: errors, SSE, chunking, pool, fallback."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from pytest_mcpswarm.errors import TransportError
from pytest_mcpswarm.transport.base import SendMeta
from pytest_mcpswarm.transport.http import HttpTransport


class Sink:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.failed: list[tuple[int | str, TransportError]] = []
        self.expired = 0
        self.closed: list[TransportError | None] = []
        self._changed = asyncio.Event()

    def on_message(self, data: bytes) -> None:
        self.messages.append(json.loads(data))
        self._changed.set()

    def on_request_failed(self, request_id: int | str, error: TransportError) -> None:
        self.failed.append((request_id, error))
        self._changed.set()

    def on_session_expired(self) -> None:
        self.expired += 1

    def on_closed(self, error: TransportError | None) -> None:
        self.closed.append(error)
        self._changed.set()

    async def until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


def request(rid: int, method: str, **params: Any) -> tuple[bytes, SendMeta]:
    body = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
    return json.dumps(body).encode(), SendMeta(method, rid, params.get("name"))


def notification(method: str) -> tuple[bytes, SendMeta]:
    return json.dumps({"jsonrpc": "2.0", "method": method}).encode(), SendMeta(method)


def result(rid: Any, **fields: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "result": fields}


class FakeServer:
    """Streamable HTTP at /mcp, legacy HTTP+SSE at /legacy; records what it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.deleted: list[str] = []
        self.release = asyncio.Event()
        self.in_slow = 0
        self.slow_arrived = asyncio.Event()
        self.legacy_queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.ports: set[int] = set()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/mcp", self.mcp)
        app.router.add_delete("/mcp", self.delete)
        app.router.add_post("/legacy", self.not_allowed)
        app.router.add_get("/legacy", self.legacy_stream)
        app.router.add_post("/legacy/messages", self.legacy_post)
        return app

    async def mcp(self, req: web.Request) -> web.StreamResponse:
        msg = await req.json()
        method = msg["method"]
        self.seen.append((method, dict(req.headers)))
        assert req.transport is not None
        self.ports.add(req.transport.get_extra_info("peername")[1])
        if "id" not in msg:
            return web.Response(status=202)
        rid = msg["id"]
        if method == "initialize":
            return web.json_response(result(rid, ok=True), headers={"Mcp-Session-Id": "s-1"})
        if req.headers.get("Mcp-Session-Id") not in ("s-1", None):
            return web.Response(status=404, text="unknown session")
        if method == "boom":
            return web.Response(status=500, text="internal")
        if method == "chunked":
            resp = web.StreamResponse(headers={"Content-Type": "application/json"})
            resp.enable_chunked_encoding()
            await resp.prepare(req)
            body = json.dumps(result(rid, big="x" * 100_000)).encode()
            for i in range(0, len(body), 7_000):
                await resp.write(body[i : i + 7_000])
            await resp.write_eof()
            return resp
        if method == "sse":
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(req)
            note = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}
            await resp.write(b": keep-alive\r\n\r\nevent: message\r\ndata: " + json.dumps(note).encode())
            await resp.write(
                b"\r\n\r\nid: 1\r\ndata: " + json.dumps(result(rid, sse=True)).encode() + b"\r\n\r\n"
            )
            await resp.write_eof()
            return resp
        if method == "slow":
            self.in_slow += 1
            self.slow_arrived.set()
            await self.release.wait()
        return web.json_response(result(rid, method=method))

    async def delete(self, req: web.Request) -> web.Response:
        self.deleted.append(req.headers.get("Mcp-Session-Id", ""))
        return web.Response(status=200)

    async def not_allowed(self, req: web.Request) -> web.Response:
        return web.Response(status=405)

    async def legacy_stream(self, req: web.Request) -> web.StreamResponse:
        assert req.headers["Accept"] == "text/event-stream"
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(req)
        await resp.write(b"event: endpoint\ndata: /legacy/messages?session_id=abc\n\n")
        while (data := await self.legacy_queue.get()) != b"":
            await resp.write(b"event: message\ndata: " + data + b"\n\n")
        return resp

    async def legacy_post(self, req: web.Request) -> web.Response:
        assert req.query["session_id"] == "abc"
        msg = await req.json()
        self.seen.append((msg["method"], dict(req.headers)))
        if "id" in msg:
            await self.legacy_queue.put(json.dumps(result(msg["id"], legacy=True)).encode())
        return web.Response(status=202, text="Accepted")


@pytest.fixture
async def server() -> AsyncIterator[tuple[FakeServer, str]]:
    fake = FakeServer()
    runner = web.AppRunner(fake.app(), shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield fake, f"http://127.0.0.1:{port}"
    fake.release.set()
    fake.legacy_queue.put_nowait(b"")
    await runner.cleanup()


async def initialized(base: str, **kwargs: Any) -> tuple[HttpTransport, Sink]:
    transport = HttpTransport(base + "/mcp", **kwargs)
    sink = Sink()
    await transport.connect(sink)
    transport.send(*request(0, "initialize"))
    await sink.until(lambda: len(sink.messages) == 1)
    return transport, sink


async def test_session_id_echo_headers_and_delete_on_close(server: tuple[FakeServer, str]) -> None:
    fake, base = server
    transport, sink = await initialized(base, headers={"Authorization": "Bearer t"})
    assert transport.session_id == "s-1"
    transport.protocol_version = "2025-11-25"
    transport.send(*notification("notifications/initialized"))
    transport.send(*request(1, "tools/list"))
    await sink.until(lambda: len(sink.messages) == 2)
    assert sink.messages[1] == result(1, method="tools/list")
    init_headers = fake.seen[0][1]
    assert init_headers["Accept"] == "application/json, text/event-stream"
    assert init_headers["Content-Type"] == "application/json"
    assert init_headers["Authorization"] == "Bearer t"
    assert "Mcp-Session-Id" not in init_headers and "MCP-Protocol-Version" not in init_headers
    for _, headers in fake.seen[1:]:
        assert headers["Mcp-Session-Id"] == "s-1"
        assert headers["MCP-Protocol-Version"] == "2025-11-25"
        assert "Mcp-Method" not in headers
    await transport.close()
    assert fake.deleted == ["s-1"]
    assert sink.closed == [None] and sink.failed == []
    with pytest.raises(TransportError):
        transport.send(*request(2, "ping"))


async def test_stateless_revision_sends_method_and_name_headers(server: tuple[FakeServer, str]) -> None:
    fake, base = server
    transport = HttpTransport(base + "/mcp")
    sink = Sink()
    await transport.connect(sink)
    transport.protocol_version = "2026-07-28"
    transport.send(*request(1, "tools/call", name="echo"))
    transport.send(*request(2, "ping"))
    await sink.until(lambda: len(sink.messages) == 2)
    by_method = {m: h for m, h in fake.seen}
    assert by_method["tools/call"]["Mcp-Method"] == "tools/call"
    assert by_method["tools/call"]["Mcp-Name"] == "echo"
    assert by_method["ping"]["Mcp-Method"] == "ping" and "Mcp-Name" not in by_method["ping"]
    assert by_method["ping"]["MCP-Protocol-Version"] == "2026-07-28"
    await transport.close()
    assert fake.deleted == []  # no session, nothing to delete


async def test_sse_reply_chunked_body_and_500(server: tuple[FakeServer, str]) -> None:
    _, base = server
    transport, sink = await initialized(base)
    transport.send(*request(1, "sse"))
    transport.send(*request(2, "chunked"))
    transport.send(*request(3, "boom"))
    await sink.until(lambda: len(sink.messages) == 4 and len(sink.failed) == 1)
    methods = [m.get("method") for m in sink.messages]
    assert methods.count("notifications/progress") == 1
    by_id = {m["id"]: m for m in sink.messages if "id" in m}
    assert by_id[1] == result(1, sse=True)
    assert len(by_id[2]["result"]["big"]) == 100_000
    rid, error = sink.failed[0]
    assert rid == 3 and error.kind == "http_500"
    assert sink.expired == 0
    await transport.close()


async def test_404_with_session_expires_it(server: tuple[FakeServer, str]) -> None:
    fake, base = server
    transport, sink = await initialized(base)
    transport._session_id = b"stale"  # what a server restart does to us
    transport._render()
    transport.send(*request(5, "tools/list"))
    await sink.until(lambda: bool(sink.failed))
    assert sink.expired == 1
    assert sink.failed[0][0] == 5 and sink.failed[0][1].kind == "http_404"
    assert transport.session_id is None
    await transport.close()
    assert fake.deleted == []


async def test_pool_grows_to_the_cap_then_queues(server: tuple[FakeServer, str]) -> None:
    fake, base = server
    transport, sink = await initialized(base, max_connections=4)
    assert transport.pool_size == 1
    for i in range(1, 11):
        transport.send(*request(i, "slow"))
    async with asyncio.timeout(5):
        while fake.in_slow < 4:
            fake.slow_arrived.clear()
            await fake.slow_arrived.wait()
    await asyncio.sleep(0.1)  # a fifth connection, if the cap were broken, would show up now
    assert transport.pool_size == 4 and transport.connections_opened == 4
    assert transport.queued == 6
    fake.release.set()
    await sink.until(lambda: len(sink.messages) == 11)
    assert sorted(m["id"] for m in sink.messages) == list(range(11))
    assert transport.connections_opened == 4 and transport.queued == 0
    assert len(fake.ports) == 4  # keep-alive: ten requests over four connections
    await transport.close()


async def test_closed_loop_reuses_one_connection(server: tuple[FakeServer, str]) -> None:
    _, base = server
    transport, sink = await initialized(base)

    def reply_then_send(data: bytes) -> None:
        Sink.on_message(sink, data)
        if len(sink.messages) < 50:
            transport.send(*request(len(sink.messages), "ping"))

    sink.on_message = reply_then_send  # type: ignore[method-assign]
    transport.send(*request(1, "ping"))
    await sink.until(lambda: len(sink.messages) == 50)
    assert transport.connections_opened == 1
    await transport.close()


async def test_legacy_fallback(server: tuple[FakeServer, str]) -> None:
    fake, base = server
    transport = HttpTransport(base + "/legacy")
    sink = Sink()
    await transport.connect(sink)
    transport.send(*request(0, "initialize"))
    await sink.until(lambda: len(sink.messages) == 1)
    assert transport.legacy
    transport.send(*notification("notifications/initialized"))
    transport.send(*request(1, "tools/list"))
    await sink.until(lambda: len(sink.messages) == 2)
    assert sink.messages == [result(0, legacy=True), result(1, legacy=True)]
    assert [m for m, _ in fake.seen] == ["initialize", "notifications/initialized", "tools/list"]
    assert sink.failed == []
    fake.legacy_queue.put_nowait(b"")  # the server ends the stream: the transport is dead
    await sink.until(lambda: bool(sink.closed))
    closed = sink.closed[0]
    assert closed is not None and closed.kind == "closed"
    assert not transport.is_open
    await transport.close()


async def test_no_legacy_either_fails_initialize_with_404(server: tuple[FakeServer, str]) -> None:
    _, base = server
    transport = HttpTransport(base + "/nowhere")
    sink = Sink()
    await transport.connect(sink)
    transport.send(*request(0, "initialize"))
    await sink.until(lambda: bool(sink.failed))
    rid, error = sink.failed[0]
    assert rid == 0 and error.kind == "http_404" and "path" in str(error)
    assert not transport.legacy
    await transport.close()


async def test_refused_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransportError) as info:
        await HttpTransport(f"http://127.0.0.1:{port}/mcp").connect(Sink())
    assert info.value.kind == "refused"
