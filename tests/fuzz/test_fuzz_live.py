"""Fuzz a live ``mcpswarm serve`` over loopback sockets: raw HTTP, WebSocket frames, JSON-RPC bodies.

One server serves the whole module.  After every input it must still be running; at the end
it must answer /health, hold no connection of ours any more, and its stderr must carry no
traceback (an exception escaping a protocol callback is logged there by the event loop).
"""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_mcpswarm.server.launch import ServerProcess
from tests.fuzz.strategies import FUZZ, frames, http_requests, rpc_messages, ws_frame

UPGRADE = (
    b"GET /mcp/ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
    b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    srv = ServerProcess(["--max-message-bytes", "65536"]).start()
    try:
        yield srv
        # Still serving after everything above, and nothing of ours left open.
        status, body = http(srv, b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        assert status == 200, body
        stats = json.loads(http(srv, b"GET /stats HTTP/1.1\r\nhost: x\r\n\r\n")[1])
        assert stats["active_connections"] == {"http": 1, "ws": 0}  # the /stats request itself
        proc = srv.proc
        assert proc is not None and proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        assert proc.stderr is not None
        err = proc.stderr.read()
        assert "Traceback" not in err and "Error" not in err, err
        assert proc.returncode == 0
    finally:
        srv.stop()


def exchange(srv: ServerProcess, data: bytes, *, timeout: float = 1.0) -> bytes:
    """Send ``data``, half-close, read until the server closes (or ``timeout``)."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close before reading it all (413, bad frame): that is an answer
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    assert srv.proc is not None and srv.proc.poll() is None, "the server died"
    return out


def http(srv: ServerProcess, request: bytes) -> tuple[int, bytes]:
    reply = exchange(srv, request)
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def post(body: bytes, headers: dict[str, str]) -> bytes:
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (
        f"POST /mcp HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\naccept: application/json\r\n"
        f"{lines}content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


@pytest.fixture(scope="module")
def session(server: ServerProcess) -> str:
    params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "fuzz"}}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}
    reply = exchange(server, post(orjson.dumps(init), {}))
    for line in reply.split(b"\r\n"):
        if line.lower().startswith(b"mcp-session-id:"):
            return line.split(b":", 1)[1].strip().decode()
    raise AssertionError(reply)


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:
        return repr(value).encode()


@FUZZ
@given(http_requests())
def test_raw_http(server: ServerProcess, data: bytes) -> None:
    reply = exchange(server, data)
    assert reply == b"" or reply.startswith(b"HTTP/1.1 ")


@FUZZ
@given(frames() | st.binary(max_size=1000))
def test_websocket_frames(server: ServerProcess, data: bytes) -> None:
    reply = exchange(server, UPGRADE + data)
    assert reply.startswith(b"HTTP/1.1 101 ")


@FUZZ
@given(rpc_messages().map(_dumps) | st.binary(max_size=300), st.booleans())
def test_jsonrpc_over_websocket(server: ServerProcess, body: bytes, newline: bool) -> None:
    reply = exchange(server, UPGRADE + ws_frame(0x1, body + (b"\n" if newline else b"")))
    assert reply.startswith(b"HTTP/1.1 101 ")


@FUZZ
@given(
    rpc_messages().map(_dumps) | st.binary(max_size=300), st.sampled_from(["session", "stateless", "none"])
)
def test_jsonrpc_over_http(server: ServerProcess, session: str, body: bytes, mode: str) -> None:
    headers = {"session": {"mcp-session-id": session}, "stateless": {"mcp-protocol-version": "2026-07-28"},
               "none": {}}[mode]  # fmt: skip
    status, reply = http(server, post(body, headers))
    assert 200 <= status < 600
    if reply:
        json.loads(reply)  # every answer to /mcp is JSON
