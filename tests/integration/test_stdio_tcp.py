"""The stdio and tcp transports against real processes and sockets on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from pytest_mcpswarm.errors import TransportError
from pytest_mcpswarm.transport.base import SendMeta
from pytest_mcpswarm.transport.stdio import StdioTransport
from pytest_mcpswarm.transport.tcp import TcpTransport

META = SendMeta("test")
ECHO = "import sys\nfor line in sys.stdin:\n    sys.stdout.write(line)\n    sys.stdout.flush()\n"


class Sink:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.closed: list[TransportError | None] = []
        self.arrived = asyncio.Event()
        self.gone = asyncio.Event()

    def on_message(self, data: bytes) -> None:
        self.messages.append(data)
        self.arrived.set()

    def on_request_failed(self, request_id: int | str, error: TransportError) -> None:
        raise AssertionError("stream transports never fail single requests")

    def on_session_expired(self) -> None:
        raise AssertionError("stream transports have no sessions")

    def on_closed(self, error: TransportError | None) -> None:
        self.closed.append(error)
        self.gone.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.messages) < count:
                self.arrived.clear()
                await self.arrived.wait()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --- stdio --------------------------------------------------------------------------------------


async def test_stdio_round_trip_and_clean_close() -> None:
    transport = StdioTransport([sys.executable, "-c", ECHO])
    sink = Sink()
    await transport.connect(sink)
    transport.send(b'{"a":1}', META)
    transport.send(b'{"b":2}', META)
    await transport.drain()
    await sink.wait_for(2)
    assert sink.messages == [b'{"a":1}', b'{"b":2}']
    pid = transport.pid
    assert pid is not None and transport.is_open
    await transport.close()
    assert sink.closed == [None]  # a close we asked for is not an error
    assert not transport.is_open
    assert not alive(pid)
    with pytest.raises(TransportError) as info:
        transport.send(b"{}", META)
    assert info.value.kind == "closed"


async def test_stdio_escalates_to_sigkill_when_the_server_ignores_eof_and_sigterm() -> None:
    stubborn = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    transport = StdioTransport([sys.executable, "-c", stubborn])
    sink = Sink()
    await transport.connect(sink)
    await sink.wait_for(1)  # SIGTERM is ignored from here on
    pid = transport.pid
    assert pid is not None
    started = time.monotonic()
    await transport.close(grace=0.2)
    assert 0.35 < time.monotonic() - started < 3
    assert not alive(pid)
    assert sink.closed == [None]


async def test_stdio_server_exit_reports_code_and_captured_stderr() -> None:
    transport = StdioTransport(
        [sys.executable, "-c", "import sys; print('boom: bad config', file=sys.stderr); sys.exit(3)"],
        stderr="capture",
    )
    sink = Sink()
    await transport.connect(sink)
    async with asyncio.timeout(5):
        await sink.gone.wait()
    (error,) = sink.closed
    assert error is not None and error.kind == "closed"
    assert "exited with code 3" in str(error)
    assert "boom: bad config" in str(error)
    assert "boom: bad config" in transport.stderr_output
    with pytest.raises(TransportError):
        await transport.drain()


async def test_stdio_missing_command_is_refused() -> None:
    transport = StdioTransport("/nonexistent/mcp-server --flag")
    with pytest.raises(TransportError, match="cannot start") as info:
        await transport.connect(Sink())
    assert info.value.kind == "refused"


async def test_stdio_line_over_the_cap_closes_with_an_error() -> None:
    flood = "import sys\nsys.stdout.write('x' * 5000)\nsys.stdout.flush()\nimport time\ntime.sleep(30)"
    transport = StdioTransport([sys.executable, "-c", flood], max_line_bytes=1000)
    sink = Sink()
    await transport.connect(sink)
    async with asyncio.timeout(5):
        await sink.gone.wait()
    (error,) = sink.closed
    assert error is not None and "longer than 1000 bytes" in str(error)
    await transport.close(grace=0.2)
    assert sink.messages == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_stdio_child_dies_when_its_parent_dies_without_cleaning_up() -> None:
    # A middle process spawns the server through StdioTransport, prints its pid and
    # exits abruptly (no close()): the kernel must take the server down with it.
    middle = (
        "import asyncio, os, sys\n"
        "from pytest_mcpswarm.transport.stdio import StdioTransport\n"
        "class S:\n"
        "    def on_message(self, d): pass\n"
        "    def on_closed(self, e): pass\n"
        "async def main():\n"
        "    t = StdioTransport(['sleep', '60'])\n"
        "    await t.connect(S())\n"
        "    print(t.pid, flush=True)\n"
        "    os._exit(0)\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", middle], capture_output=True, text=True, timeout=20, check=True
    )
    pid = int(out.stdout.strip())
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


# --- tcp ----------------------------------------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    """Start a loopback server running ``handler`` per connection; everything is torn down after."""
    servers: list[asyncio.Server] = []
    handlers: set[asyncio.Task[None]] = set()

    async def start(handler: Handler) -> int:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            handlers.add(asyncio.current_task())  # type: ignore[arg-type]
            try:
                await handler(reader, writer)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

        server = await asyncio.start_server(run, "127.0.0.1", 0)
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()
    async with asyncio.timeout(5):
        await asyncio.gather(*handlers)


async def test_tcp_reassembles_lines_split_across_writes(serve: Callable[[Handler], Awaitable[int]]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        for chunk in (b'{"id":', b"1}\n\n" + line[:3], line[3:] + b'{"id":2}\r\n'):
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.01)
        await reader.read()  # until the client closes

    transport = TcpTransport("127.0.0.1", await serve(handler))
    sink = Sink()
    await transport.connect(sink)
    transport.send(b'{"ping":true}', META)
    await transport.drain()
    await sink.wait_for(3)
    assert sink.messages == [b'{"id":1}', b'{"ping":true}', b'{"id":2}\r']
    await transport.close()
    assert sink.closed == [None]


async def test_tcp_server_hangup_is_closed(serve: Callable[[Handler], Awaitable[int]]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pass  # the fixture closes the connection right away

    transport = TcpTransport("127.0.0.1", await serve(handler))
    sink = Sink()
    await transport.connect(sink)
    async with asyncio.timeout(5):
        await sink.gone.wait()
    (error,) = sink.closed
    assert error is not None and error.kind == "closed"
    assert not transport.is_open
    with pytest.raises(TransportError):
        transport.send(b"{}", META)


async def test_tcp_reset_by_peer_is_reset(serve: Callable[[Handler], Awaitable[int]]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()  # RST instead of FIN

    transport = TcpTransport("127.0.0.1", await serve(handler))
    sink = Sink()
    await transport.connect(sink)
    transport.send(b"{}", META)
    async with asyncio.timeout(5):
        await sink.gone.wait()
    (error,) = sink.closed
    assert error is not None and error.kind == "reset"


async def test_tcp_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = TcpTransport("127.0.0.1", port)
    with pytest.raises(TransportError, match="refused") as info:
        await transport.connect(Sink())
    assert info.value.kind == "refused"
