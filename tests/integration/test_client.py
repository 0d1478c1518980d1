"""McpClient failure handling against a scripted MCP server on a loopback TCP socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from pytest_mcpswarm.client import McpClient
from pytest_mcpswarm.errors import McpCallError, ProtocolError, TransportError
from pytest_mcpswarm.transport.tcp import TcpTransport

# Given one request, return the raw lines to answer with (None: stay silent).
Script = Callable[[dict[str, Any]], list[bytes] | None]


def answer(msg: dict[str, Any], result: Any) -> list[bytes]:
    return [orjson.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result})]


def init_result(version: str = "2025-11-25") -> dict[str, Any]:
    return {"protocolVersion": version, "capabilities": {"tools": {}}, "serverInfo": {"name": "scripted"}}


class Peer:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.received: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(5):
            while not condition():
                self.arrived.clear()
                await self.arrived.wait()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while not reader.at_eof():
                line = await reader.readline()
                if not line.strip():
                    continue
                msg = orjson.loads(line)
                self.received.append(msg)
                self.arrived.set()
                if msg.get("method") == "hang_up":
                    break
                for out in self.script(msg) or []:
                    writer.write(out + b"\n")
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@pytest.fixture
async def peer_client() -> AsyncIterator[Callable[[Script], Any]]:
    servers: list[asyncio.Server] = []
    clients: list[McpClient] = []

    async def start(script: Script, **options: Any) -> tuple[Peer, McpClient]:
        peer = Peer(script)
        server = await asyncio.start_server(peer.handle, "127.0.0.1", 0)
        servers.append(server)
        client = McpClient(TcpTransport("127.0.0.1", server.sockets[0].getsockname()[1]), **options)
        clients.append(client)
        return peer, client

    yield start
    for client in clients:
        await client.close()
    for server in servers:
        server.close()
        await server.wait_closed()


def handshake_then(rest: Script) -> Script:
    def script(msg: dict[str, Any]) -> list[bytes] | None:
        if msg.get("method") == "initialize":
            return answer(msg, init_result())
        if "id" not in msg:
            return None
        return rest(msg)

    return script


async def test_timeout_cancels_the_request_and_tells_the_server(peer_client: Any) -> None:
    peer, client = await peer_client(handshake_then(lambda msg: None))
    await client.open()
    with pytest.raises(TransportError, match=r"no reply within 0\.2s") as info:
        await client.call_tool("slow", {}, timeout=0.2)
    assert info.value.kind == "timeout"
    await peer.until(lambda: any(m.get("method") == "notifications/cancelled" for m in peer.received))
    cancel = next(m for m in peer.received if m.get("method") == "notifications/cancelled")
    call = next(m for m in peer.received if m.get("method") == "tools/call")
    assert cancel["params"]["requestId"] == call["id"]


async def test_version_the_client_does_not_speak_fails_open_and_closes(peer_client: Any) -> None:
    _, client = await peer_client(lambda msg: answer(msg, init_result("2099-01-01")) if "id" in msg else None)
    with pytest.raises(ProtocolError, match="2099-01-01") as info:
        await client.open()
    assert info.value.kind == "version"
    assert not client.transport.is_open


async def test_error_reply_becomes_mcp_call_error_with_data(peer_client: Any) -> None:
    def rest(msg: dict[str, Any]) -> list[bytes]:
        err = {"code": -32602, "message": "bad args", "data": {"field": "a"}}
        return [orjson.dumps({"jsonrpc": "2.0", "id": msg["id"], "error": err})]

    _, client = await peer_client(handshake_then(rest))
    await client.open()
    with pytest.raises(McpCallError) as info:
        await client.call_tool("add", {"a": "x"})
    assert (info.value.code, info.value.message, info.value.data) == (-32602, "bad args", {"field": "a"})


async def test_garbage_reply_fails_the_waiting_call(peer_client: Any) -> None:
    _, client = await peer_client(handshake_then(lambda msg: [b'{"jsonrpc":"2.0","id":']))
    await client.open()
    with pytest.raises(ProtocolError) as info:
        await client.list_tools(timeout=5)
    assert info.value.kind == "malformed"


async def test_stray_reply_is_recorded_not_fatal(peer_client: Any) -> None:
    def rest(msg: dict[str, Any]) -> list[bytes]:
        return answer({"id": 999}, {}) + answer(msg, {"tools": [{"name": "t"}]})

    _, client = await peer_client(handshake_then(rest))
    await client.open()
    assert [t["name"] for t in await client.list_tools()] == ["t"]
    assert [e.kind for e in client.stray_replies] == ["unmatched_id"]


async def test_server_hangup_fails_in_flight_calls(peer_client: Any) -> None:
    _, client = await peer_client(handshake_then(lambda msg: None))
    await client.open()
    with pytest.raises(TransportError) as info:
        await client.request("hang_up", timeout=5)
    assert info.value.kind == "closed"


async def test_session_expiry_reinitializes_and_fails_what_was_in_flight(peer_client: Any) -> None:
    peer, client = await peer_client(handshake_then(lambda msg: None))
    await client.open()
    pending = asyncio.ensure_future(client.request("tools/list", timeout=5))
    await asyncio.sleep(0.05)
    client.on_session_expired()  # what HttpTransport calls on a 404 for our session id
    with pytest.raises(TransportError) as info:
        await pending
    assert info.value.kind == "http_404"
    await peer.until(lambda: [m.get("method") for m in peer.received].count("notifications/initialized") == 2)
    assert [m.get("method") for m in peer.received].count("initialize") == 2
    assert client.version == "2025-11-25"
