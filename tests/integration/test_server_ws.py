"""`mcpswarm serve` over WebSocket: the websockets client library, and raw bytes for framing edge cases."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from pytest_mcpswarm.protocol import versions as v
from pytest_mcpswarm.server.launch import ServerProcess


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess(["--max-message-bytes", "4096"]) as srv:
        yield srv


def call(rid: int, name: str, arguments: object) -> str:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": rid,
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments},
        }
    )


async def test_tools_over_websocket(server: ServerProcess) -> None:
    async with connect(server.ws_url) as ws:
        await ws.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 0,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": "2025-03-26",
                        "capabilities": {},
                        "clientInfo": {"name": "t", "version": "1"},
                    },
                }
            )
        )
        assert json.loads(await ws.recv())["result"]["protocolVersion"] == "2025-03-26"
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        await ws.send(call(1, "echo", {"text": "hi"}))
        reply = json.loads(await ws.recv())
        assert reply["id"] == 1
        assert reply["result"]["content"][0]["text"] == "hi"
        assert reply["result"]["_meta"]["io.mcpswarm/replica"]
        await ws.send(call(2, "payload", {"bytes": 1000}))
        assert len(json.loads(await ws.recv())["result"]["content"][0]["text"]) == 1000
        await ws.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 3,
                    "method": "prompts/get",
                    "params": {"name": "greet", "arguments": {"name": "Ada"}},
                }
            )
        )
        assert "Ada" in json.loads(await ws.recv())["result"]["messages"][0]["content"]["text"]
        await ws.send("{nope")
        assert json.loads(await ws.recv())["error"]["code"] == v.PARSE_ERROR
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 4, "method": "no/such"}))
        assert json.loads(await ws.recv())["error"]["code"] == v.METHOD_NOT_FOUND


async def test_modern_envelope_over_websocket(server: ServerProcess) -> None:
    meta = {v.META_PROTOCOL_VERSION: v.LATEST_STATELESS, v.META_CLIENT_CAPABILITIES: {}}
    async with connect(server.ws_url) as ws:
        await ws.send(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta}})
        )
        assert json.loads(await ws.recv())["result"]["supportedVersions"] == list(v.STATELESS_VERSIONS)
        bad = {**meta, v.META_PROTOCOL_VERSION: "2030-01-01"}
        await ws.send(
            json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": bad}})
        )
        err = json.loads(await ws.recv())["error"]
        assert err["code"] == v.UNSUPPORTED_PROTOCOL_VERSION
        assert err["data"]["requested"] == "2030-01-01"


async def test_newline_framing_is_echoed(server: ServerProcess) -> None:
    async with connect(server.ws_url) as ws:
        await ws.send(call(1, "echo", {"text": "a"}) + "\n" + call(2, "add", {"a": 1, "b": 2}) + "\n")
        first, second = await ws.recv(), await ws.recv()
        assert isinstance(first, str)
        assert isinstance(second, str)
        assert first.endswith("\n")
        assert second.endswith("\n")
        assert [json.loads(first)["id"], json.loads(second)["id"]] == [1, 2]
        await ws.send(call(3, "echo", {"text": "plain"}))
        plain = await ws.recv()
        assert isinstance(plain, str)
        assert not plain.endswith("\n")


async def test_binary_frame_closes_1003(server: ServerProcess) -> None:
    async with connect(server.ws_url) as ws:
        await ws.send(b"\x00\x01")
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1003


async def test_oversized_message_closes_1009(server: ServerProcess) -> None:
    async with connect(server.ws_url, max_size=None) as ws:
        await ws.send(call(1, "echo", {"text": "x" * 5000}))
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1009


# -- raw bytes -----------------------------------------------------------------------------------


def raw_ws(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET /mcp/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101 ")
    return sock


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
    n = len(payload)
    head = bytes((opcode | (0x80 if fin else 0),))
    m = 0x80 if mask else 0
    head += bytes((m | n,)) if n < 126 else bytes((m | 126,)) + struct.pack("!H", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    def exact(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "connection closed mid-frame"
            data += chunk
        return data

    b0, b1 = exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", exact(8))[0]
    return b0 & 0x0F, exact(n)


def test_raw_fragmented_ping_pipelined_and_close() -> None:
    with ServerProcess() as srv, raw_ws(srv.port) as sock:
        msg = call(1, "echo", {"text": "fragmented"}).encode()
        # Fragments with a ping between them (control frames may interleave), then two pipelined messages.
        sock.sendall(
            frame(0x1, msg[:10], fin=False)
            + frame(0x9, b"hb")
            + frame(0x0, msg[10:20], fin=False)
            + frame(0x0, msg[20:])
            + frame(0x1, call(2, "echo", {}).encode())
            + frame(0x1, call(3, "add", {"a": 1, "b": 1}).encode())
        )
        assert read_frame(sock) == (0xA, b"hb")
        replies = [read_frame(sock) for _ in range(3)]
        assert [json.loads(p)["id"] for _, p in replies] == [1, 2, 3]
        assert json.loads(replies[0][1])["result"]["content"][0]["text"] == "fragmented"
        sock.sendall(frame(0x8, struct.pack("!H", 1000)))
        assert read_frame(sock) == (0x8, struct.pack("!H", 1000))
        assert sock.recv(10) == b""


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (frame(0x1, b"{}", mask=False), 1002),  # unmasked client frame
        (frame(0x0, b"{}"), 1002),  # continuation without a start
        (frame(0x9, b"x" * 126), 1002),  # oversized control frame
        (frame(0x3, b"{}"), 1002),  # reserved opcode
        (frame(0x1, b"\xff\xfe"), 1007),  # not UTF-8
    ],
)
def test_raw_bad_frames_close_with_code(server: ServerProcess, data: bytes, code: int) -> None:
    with raw_ws(server.port) as sock:
        sock.sendall(data)
        opcode, payload = read_frame(sock)
        assert opcode == 0x8
        assert struct.unpack("!H", payload[:2])[0] == code


def test_ws_upgrade_rejections(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /mcp/ws HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 426 ")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"GET /mcp/ws HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 403 ")
