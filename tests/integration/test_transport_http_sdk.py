"""HttpTransport against the official SDK's MCPServer over Streamable HTTP (stateful), in a subprocess."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pytest_mcpswarm.errors import TransportError
from pytest_mcpswarm.transport.base import SendMeta
from pytest_mcpswarm.transport.http import HttpTransport

VERSION = "2025-11-25"
SERVER = """
import sys, uvicorn
from mcp.server.mcpserver import MCPServer
mcp = MCPServer("sdk-peer")

@mcp.tool()
def echo(text: str) -> str:
    return text

app = mcp.streamable_http_app(json_response=sys.argv[2] == "json")
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module", params=["sse", "json"])
def sdk_url(request: pytest.FixtureRequest) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port), request.param])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the SDK server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


class Sink:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
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
        self._changed.set()

    def on_closed(self, error: TransportError | None) -> None:
        self.closed.append(error)

    async def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


def msg(rid: int | None, method: str, params: dict[str, Any] | None = None) -> tuple[bytes, SendMeta]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if rid is not None:
        body["id"] = rid
    if params is not None:
        body["params"] = params
    return json.dumps(body).encode(), SendMeta(method, rid, (params or {}).get("name"))


INIT = {
    "protocolVersion": VERSION,
    "capabilities": {},
    "clientInfo": {"name": "mcpswarm-test", "version": "0"},
}


async def test_stateful_session_lifecycle(sdk_url: str) -> None:
    transport = HttpTransport(sdk_url)
    sink = Sink()
    await transport.connect(sink)
    transport.send(*msg(1, "initialize", INIT))
    await sink.until(lambda: len(sink.messages) == 1)
    assert sink.messages[0]["result"]["protocolVersion"] == VERSION
    session = transport.session_id
    assert session
    transport.protocol_version = VERSION
    transport.send(*msg(None, "notifications/initialized"))  # answered 202, nothing delivered
    for i in range(2, 12):
        transport.send(*msg(i, "tools/call", {"name": "echo", "arguments": {"text": f"t{i}"}}))
    await sink.until(lambda: len(sink.messages) == 11)
    texts = {m["id"]: m["result"]["content"][0]["text"] for m in sink.messages[1:]}
    assert texts == {i: f"t{i}" for i in range(2, 12)}
    assert sink.failed == [] and transport.failed_notifications == 0
    await transport.close()
    assert sink.closed == [None]

    # The DELETE ended the session: the same id is now unknown, which is a 404 -> expiry.
    stale = HttpTransport(sdk_url)
    sink2 = Sink()
    await stale.connect(sink2)
    stale._session_id = session.encode()
    stale.protocol_version = VERSION
    stale.send(*msg(7, "tools/list"))
    await sink2.until(lambda: bool(sink2.failed))
    assert sink2.expired == 1
    assert sink2.failed[0][0] == 7 and sink2.failed[0][1].kind == "http_404"
    await stale.close()
