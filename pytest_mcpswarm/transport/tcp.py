"""``tcp://host:port``: newline-delimited JSON-RPC over a plain TCP socket (erlmcp's TCP transport)."""

from __future__ import annotations

import asyncio
import errno

from pytest_mcpswarm.errors import TransportError
from pytest_mcpswarm.transport.base import MessageSink, SendMeta
from pytest_mcpswarm.transport.framing import MAX_LINE_BYTES, LineChannel

__all__ = ["TcpTransport"]

#: Write-buffer high-water mark: ``drain`` waits while more than this is queued.
HIGH_WATER = 256 * 1024


class _Protocol(asyncio.Protocol):
    def __init__(self, channel: LineChannel, where: str) -> None:
        self.channel = channel
        self.where = where
        self.transport: asyncio.Transport | None = None
        self.closing = False  # we started the close: whatever follows is not an error
        self.gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.set_write_buffer_limits(high=HIGH_WATER)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.channel.data_received(data)
        except TransportError as exc:
            self.channel.lost(exc)
            assert self.transport is not None
            self.transport.abort()

    def eof_received(self) -> bool:
        if not self.closing:
            self.channel.lost(TransportError(f"{self.where} closed the connection", kind="closed"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None or self.closing:
            self.channel.lost(None)
        else:
            self.channel.lost(TransportError(f"connection to {self.where} broke: {exc}", kind="reset"))
        if not self.gone.done():
            self.gone.set_result(None)

    def pause_writing(self) -> None:
        self.channel.pause_writing()

    def resume_writing(self) -> None:
        self.channel.resume_writing()


class TcpTransport:
    """One TCP connection carrying one JSON-RPC message per line."""

    def __init__(self, host: str, port: int, *, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.host = host
        self.port = port
        self.max_line_bytes = max_line_bytes
        self._protocol: _Protocol | None = None
        self._version: str | None = None

    @property
    def where(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    async def connect(self, sink: MessageSink) -> None:
        if self._protocol is not None:
            raise RuntimeError("TcpTransport.connect() called twice")
        channel = LineChannel(sink, self.max_line_bytes)
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await loop.create_connection(
                lambda: _Protocol(channel, self.where), self.host, self.port
            )
        except ConnectionRefusedError:
            raise TransportError(f"{self.where} refused the connection", kind="refused") from None
        except OSError as exc:
            kind = "refused" if exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH) else "reset"
            raise TransportError(f"cannot connect to {self.where}: {exc}", kind=kind) from None
        self._protocol = protocol

    def send(self, data: bytes, meta: SendMeta) -> None:
        protocol = self._protocol
        if protocol is None or protocol.transport is None or protocol.channel.closed:
            raise TransportError(f"cannot send {meta.method or 'a reply'}: {self.where} is closed")
        protocol.transport.writelines((data, b"\n"))

    async def drain(self) -> None:
        if self._protocol is None:
            raise TransportError(f"{self.where} is not connected")
        await self._protocol.channel.drain()

    async def close(self, grace: float = 2.0) -> None:
        """Flush and FIN; a peer that stops reading gets the connection aborted after ``grace``."""
        protocol = self._protocol
        if protocol is None or protocol.transport is None:
            return
        protocol.closing = True
        protocol.transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(protocol.gone), grace)
        except TimeoutError:
            protocol.transport.abort()
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
