"""Fuzz the server's sans-I/O parts in process: WebSocket framing, the MCP dispatcher, and the
HTTP/WebSocket connection protocols driven through a fake transport (no sockets, no threads).

The only exception any of them may raise is the framing layer's own ``FrameError``; everything
else must become an answer (an HTTP status, a JSON-RPC error, a close frame).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_mcpswarm.server import wsframes as wf
from pytest_mcpswarm.server.config import ServerConfig
from pytest_mcpswarm.server.context import ServerContext
from pytest_mcpswarm.server.dispatch import Dispatcher
from pytest_mcpswarm.server.http_conn import HttpConnection
from pytest_mcpswarm.server.ws_conn import WsConnection
from tests.fuzz.strategies import FUZZ, frames, http_requests, json_values, rpc_messages

UPGRADE = (
    b"GET /mcp/ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
    b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
)


class FakeTransport:
    """Just enough of asyncio.Transport for the server's protocols."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.closed = False
        self.protocol: asyncio.BaseProtocol | None = None
        self.paused = False

    def write(self, data: bytes) -> None:
        assert isinstance(data, bytes | bytearray), type(data)
        if not self.closed:
            self.out += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


class Sink:
    def __init__(self) -> None:
        self.delivered: list[tuple[int, int, bytes]] = []

    def deliver(self, token: int, code: int, body: bytes) -> None:
        self.delivered.append((token, code, body))


def _raise(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    raise AssertionError(f"the server reported an internal error: {context}") from context.get("exception")


@pytest.fixture(scope="module")
def ctx() -> Iterator[ServerContext]:
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(_raise)  # a handler bug must fail the fuzz test, not hide as a 400
    try:
        yield ServerContext(ServerConfig(max_message_bytes=64 * 1024), 0, loop)
    finally:
        loop.close()


def feed(ctx: ServerContext, data: bytes, cuts: list[int]) -> FakeTransport:
    """Feed ``data`` to a fresh connection in pieces cut at ``cuts``, following a WebSocket upgrade."""
    transport = FakeTransport()
    conn = HttpConnection(ctx)
    conn.connection_made(transport)  # type: ignore[arg-type]
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        piece = data[start:cut]
        start = max(start, cut)
        if not piece:
            continue
        protocol = transport.protocol or conn
        assert isinstance(protocol, HttpConnection | WsConnection)
        protocol.data_received(piece)
        if transport.closed:
            break
    (transport.protocol or conn).connection_lost(None)
    return transport


@FUZZ
@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=6))
def test_frame_parser_random_bytes(data: bytes, cuts: list[int]) -> None:
    assert _parse(data, []) == _parse(data, cuts)


@FUZZ
@given(frames(), st.lists(st.integers(0, 2000), max_size=6))
def test_frame_parser_structured_frames(data: bytes, cuts: list[int]) -> None:
    whole, pieces = _parse(data, []), _parse(data, cuts)
    assert whole == pieces  # chunking never changes what is parsed, nor where it fails


def _parse(data: bytes, cuts: list[int]) -> tuple[list[tuple[int, bytes]], int | None]:
    parser = wf.FrameParser(4096)
    out: list[tuple[int, bytes]] = []
    start = 0
    try:
        for cut in [*sorted(cuts), len(data)]:
            out.extend(parser.feed(data[start:cut] if cut > start else b""))
            start = max(start, cut)
    except wf.FrameError as exc:
        assert 1000 <= exc.code <= 1011
        return out + exc.messages, exc.code
    return out, None


@FUZZ
@given(rpc_messages(), st.booleans(), st.none() | st.dictionaries(st.text(max_size=25), st.text(max_size=25)))
def test_dispatcher_answers_any_message(ctx: ServerContext, msg: Any, modern: bool,
                                        headers: dict[str, str] | None) -> None:  # fmt: skip
    sink = Sink()
    reply = ctx.dispatcher.handle(msg, sink, 1, headers, modern)
    if reply is not None:
        code, body = reply
        assert isinstance(code, int)
        if body:
            orjson.loads(body)  # every immediate reply body is one JSON document


@FUZZ
@given(json_values)
def test_dispatcher_answers_any_json_value(ctx: ServerContext, value: Any) -> None:
    dispatcher: Dispatcher = ctx.dispatcher
    dispatcher.handle(value, Sink(), 1, None, False)


@FUZZ
@given(http_requests(), st.lists(st.integers(0, 3000), max_size=5))
def test_http_connection_survives_any_request(ctx: ServerContext, data: bytes, cuts: list[int]) -> None:
    transport = feed(ctx, data, cuts)
    if transport.out:
        assert transport.out.startswith(b"HTTP/1.1 ")


@FUZZ
@given(frames(), st.lists(st.integers(0, 3000), max_size=5))
def test_websocket_connection_survives_any_frames(ctx: ServerContext, data: bytes, cuts: list[int]) -> None:
    transport = feed(ctx, UPGRADE + data, [len(UPGRADE) + c for c in cuts])
    assert transport.out.startswith(b"HTTP/1.1 101 ")


@FUZZ
@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=5))
def test_websocket_connection_survives_random_bytes(ctx: ServerContext, data: bytes, cuts: list[int]) -> None:
    feed(ctx, UPGRADE + data, [len(UPGRADE) + c for c in cuts])
