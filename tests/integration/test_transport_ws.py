"""WebSocketTransport against a real websockets server on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from pytest_mcpswarm.errors import TransportError
from pytest_mcpswarm.transport.base import SendMeta
from pytest_mcpswarm.transport.ws import WebSocketTransport

PING = SendMeta("ping", 1)


class Sink:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.closed: list[TransportError | None] = []
        self._changed = asyncio.Event()

    def on_message(self, data: bytes) -> None:
        self.messages.append(data)
        self._changed.set()

    def on_request_failed(self, request_id: int | str, error: TransportError) -> None:
        raise AssertionError("WebSocket has no per-request failures")

    def on_session_expired(self) -> None:
        raise AssertionError("WebSocket has no sessions")

    def on_closed(self, error: TransportError | None) -> None:
        self.closed.append(error)
        self._changed.set()

    async def until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


Handler = Callable[[ServerConnection], Awaitable[None]]


def _only_mcp_ws(connection: ServerConnection, request: Request) -> Response | None:
    if request.path != "/mcp/ws":
        return connection.respond(HTTPStatus.NOT_FOUND, "no such endpoint\n")
    return None


async def _start(handler: Handler) -> tuple[Server, str]:
    server = await serve(handler, "127.0.0.1", 0, process_request=_only_mcp_ws, max_size=None)
    port = server.sockets[0].getsockname()[1]
    return server, f"ws://127.0.0.1:{port}/mcp/ws"


received: list[str | bytes] = []


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        received.append(message)
        await ws.send(message)


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    received.clear()
    server, url = await _start(echo)
    yield url
    server.close()
    await server.wait_closed()


async def test_echo_in_order_as_text_frames(echo_url: str) -> None:
    sink = Sink()
    transport = WebSocketTransport(echo_url)
    await transport.connect(sink)
    assert transport.is_open
    messages = [b'{"jsonrpc":"2.0","id":%d,"method":"ping"}' % i for i in range(500)]
    for message in messages:
        transport.send(message, PING)
    await transport.drain()
    await sink.until(lambda: len(sink.messages) == 500)
    assert sink.messages == messages
    # The server saw TEXT frames (str), each one a whole message.
    assert received == [m.decode() for m in messages]
    await transport.close()
    assert sink.closed == [None]
    assert not transport.is_open
    with pytest.raises(TransportError) as info:
        transport.send(b"{}", PING)
    assert info.value.kind == "closed"


async def test_newline_framing_sends_lines_and_reassembles_split_frames() -> None:
    got: list[str | bytes] = []

    async def split_sender(ws: ServerConnection) -> None:
        got.append(await ws.recv())
        await ws.send('{"id":1}\n{"id"')
        await ws.send(":2}")
        await ws.send('\n{"id":3}\n')

    server, url = await _start(split_sender)
    sink = Sink()
    transport = WebSocketTransport(url, newline=True)
    await transport.connect(sink)
    transport.send(b'{"id":0}', PING)
    await sink.until(lambda: len(sink.messages) == 3)
    assert got == ['{"id":0}\n']
    assert sink.messages == [b'{"id":1}', b'{"id":2}', b'{"id":3}']
    await transport.close()
    server.close()


async def test_fragmented_message_is_reassembled_between_whole_ones() -> None:
    # Whole text frames take the listener's shortcut; a fragmented message must turn it off
    # until its last frame, then whole frames take it again.
    async def fragmenting(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send('{"id":1}')
        await ws.send(['{"id":', "2,", '"x":"y"}'])  # one message in three frames
        await ws.send('{"id":3}')
        await ws.send(["{}", ""])  # a message whose last fragment is empty
        await ws.send('{"id":4}')

    server, url = await _start(fragmenting)
    sink = Sink()
    transport = WebSocketTransport(url)
    await transport.connect(sink)
    transport.send(b'{"id":0}', PING)
    await sink.until(lambda: len(sink.messages) == 5)
    assert sink.messages == [b'{"id":1}', b'{"id":2,"x":"y"}', b'{"id":3}', b"{}", b'{"id":4}']
    assert transport.is_open
    await transport.close()
    server.close()


async def test_binary_frame_is_a_protocol_error() -> None:
    async def binary(ws: ServerConnection) -> None:
        await ws.send(b'{"id":1}')
        await ws.wait_closed()

    server, url = await _start(binary)
    sink = Sink()
    transport = WebSocketTransport(url)
    await transport.connect(sink)
    await sink.until(lambda: bool(sink.closed))
    error = sink.closed[0]
    assert error is not None and error.kind == "protocol"
    assert "binary" in str(error)
    assert sink.messages == []
    assert not transport.is_open
    server.close()


async def test_server_close_is_reported_with_code() -> None:
    async def closer(ws: ServerConnection) -> None:
        await ws.send('{"id":1}')
        await ws.close(1001, "going away")

    server, url = await _start(closer)
    sink = Sink()
    transport = WebSocketTransport(url)
    await transport.connect(sink)
    await sink.until(lambda: bool(sink.closed))
    assert sink.messages == [b'{"id":1}']
    error = sink.closed[0]
    assert error is not None and error.kind == "closed"
    assert "1001" in str(error) and "going away" in str(error)
    server.close()


async def test_refused_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransportError) as info:
        await WebSocketTransport(f"ws://127.0.0.1:{port}/mcp/ws").connect(Sink())
    assert info.value.kind == "refused"


async def test_wrong_path_gives_http_404_with_a_hint(echo_url: str) -> None:
    with pytest.raises(TransportError) as info:
        await WebSocketTransport(echo_url.replace("/mcp/ws", "/mcp")).connect(Sink())
    assert info.value.kind == "http_404"
    assert "/mcp/ws" in str(info.value)


async def test_drain_waits_while_the_server_does_not_read() -> None:
    release = asyncio.Event()

    async def slow_reader(ws: ServerConnection) -> None:
        await release.wait()
        async for _ in ws:
            pass

    server, url = await _start(slow_reader)
    sink = Sink()
    transport = WebSocketTransport(url)
    await transport.connect(sink)
    big = b'"' + b"x" * (1 << 20) + b'"'
    for _ in range(64):  # 64 MiB: more than the kernel buffers on loopback can swallow
        transport.send(big, PING)
    drained = asyncio.ensure_future(transport.drain())
    await asyncio.sleep(0.2)
    assert not drained.done()
    release.set()
    await asyncio.wait_for(drained, 10)
    await transport.close()
    server.close()
