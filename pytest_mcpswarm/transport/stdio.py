"""``stdio:COMMAND``: spawn an MCP server and speak newline-delimited JSON-RPC on its stdin/stdout.

Shutdown follows the spec's stdio section: close the child's stdin, wait,
SIGTERM, wait, SIGKILL.  The child gets its own session (so a Ctrl-C meant for
us does not hit it mid-benchmark, and the signals reach any grandchildren of
a wrapper such as ``uv run``), and on Linux it is told to die with us.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence
from typing import Final, Literal

from pytest_mcpswarm.errors import TransportError
from pytest_mcpswarm.procs import preexec_die_with_parent
from pytest_mcpswarm.transport.base import MessageSink, SendMeta
from pytest_mcpswarm.transport.framing import MAX_LINE_BYTES, LineChannel

__all__ = ["StdioTransport"]

StderrMode = Literal["inherit", "capture", "devnull"]
HIGH_WATER: Final = 256 * 1024
#: How much of a captured stderr we keep (the tail is what explains a crash).
STDERR_KEEP: Final = 64 * 1024


class _Protocol(asyncio.SubprocessProtocol):
    def __init__(self, channel: LineChannel, name: str, capture: bool) -> None:
        self.channel = channel
        self.name = name
        self.stderr = bytearray() if capture else None
        self.transport: asyncio.SubprocessTransport | None = None
        self.closing = False
        self.gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.SubprocessTransport)
        self.transport = transport
        stdin = transport.get_pipe_transport(0)
        assert isinstance(stdin, asyncio.WriteTransport)
        stdin.set_write_buffer_limits(high=HIGH_WATER)

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            try:
                self.channel.data_received(data)
            except TransportError as exc:
                self.channel.lost(exc)
                assert self.transport is not None
                self.transport.kill()
        elif self.stderr is not None:
            self.stderr += data
            del self.stderr[:-STDERR_KEEP]

    def connection_lost(self, exc: Exception | None) -> None:
        # Called once the process exited *and* its pipes are drained, so no message is lost.
        if self.closing:
            self.channel.lost(None)
        else:
            code = self.transport.get_returncode() if self.transport is not None else None
            tail = bytes(self.stderr[-2000:]).decode(errors="replace").strip() if self.stderr else ""
            problem = f"server process {self.name!r} exited with code {code}"
            self.channel.lost(
                TransportError(problem + (f"; its stderr ends:\n{tail}" if tail else ""), kind="closed")
            )
        if self.transport is not None:
            self.transport.close()  # the process is reaped; this releases the transport's pipes
        if not self.gone.done():
            self.gone.set_result(None)

    def pause_writing(self) -> None:
        self.channel.pause_writing()

    def resume_writing(self) -> None:
        self.channel.resume_writing()


class StdioTransport:
    """One server process; the connection is its stdin and stdout."""

    def __init__(
        self,
        command: str | Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stderr: StderrMode = "inherit",
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        self.argv = shlex.split(command) if isinstance(command, str) else list(command)
        if not self.argv:
            raise ValueError("StdioTransport needs a command")
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.stderr_mode: StderrMode = stderr
        self.max_line_bytes = max_line_bytes
        self._protocol: _Protocol | None = None
        self._version: str | None = None

    async def connect(self, sink: MessageSink) -> None:
        if self._protocol is not None:
            raise RuntimeError("StdioTransport.connect() called twice")
        channel = LineChannel(sink, self.max_line_bytes)
        stderr = {"inherit": None, "capture": subprocess.PIPE, "devnull": subprocess.DEVNULL}[
            self.stderr_mode
        ]
        name = shlex.join(self.argv)
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await loop.subprocess_exec(
                lambda: _Protocol(channel, name, self.stderr_mode == "capture"),
                *self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=preexec_die_with_parent(signal.SIGKILL),
            )
        except OSError as exc:  # not found, not executable, bad cwd
            raise TransportError(
                f"cannot start {name!r}: {exc.strerror or exc}",
                kind="refused",
                fix="check the command after stdio: (it is split like a shell would, without a shell)",
            ) from None
        self._protocol = protocol

    @property
    def pid(self) -> int | None:
        transport = self._protocol.transport if self._protocol else None
        return transport.get_pid() if transport is not None else None

    @property
    def stderr_output(self) -> str:
        """What the server wrote to stderr (last 64 KiB), when ``stderr="capture"``."""
        captured = self._protocol.stderr if self._protocol else None
        return bytes(captured or b"").decode(errors="replace")

    def send(self, data: bytes, meta: SendMeta) -> None:
        protocol = self._protocol
        if protocol is None or protocol.transport is None or protocol.channel.closed:
            raise TransportError(f"cannot send {meta.method or 'a reply'}: the server process is gone")
        stdin = protocol.transport.get_pipe_transport(0)
        if stdin is None or stdin.is_closing():
            raise TransportError("cannot send: the server's stdin is closed")
        assert isinstance(stdin, asyncio.WriteTransport)
        stdin.writelines((data, b"\n"))

    async def drain(self) -> None:
        if self._protocol is None:
            raise TransportError("the server process was never started")
        await self._protocol.channel.drain()

    async def close(self, grace: float = 2.0) -> None:
        """Close stdin, then SIGTERM and SIGKILL the process group, ``grace`` seconds apart."""
        protocol = self._protocol
        if protocol is None or protocol.transport is None or protocol.gone.done():
            return
        protocol.closing = True
        transport = protocol.transport
        stdin = transport.get_pipe_transport(0)
        if stdin is not None:
            stdin.close()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                await asyncio.wait_for(asyncio.shield(protocol.gone), grace)
                return
            except TimeoutError:
                _signal_group(transport.get_pid(), sig)
        await protocol.gone

    @property
    def is_open(self) -> bool:
        return self._protocol is not None and not self._protocol.channel.closed

    @property
    def protocol_version(self) -> str | None:
        return self._version

    @protocol_version.setter
    def protocol_version(self, value: str | None) -> None:
        self._version = value


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # The child leads its own session, so its pid is its process group id.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
