"""Newline-delimited JSON-RPC over a byte stream: the part stdio and tcp share.

One message per line; orjson never emits a raw newline, so no escaping is
needed.  :class:`LineChannel` is the receiving half plus write flow control;
the stdio and tcp transports own the asyncio plumbing and feed it.
"""

from __future__ import annotations

import asyncio
from typing import Final

from pytest_mcpswarm.errors import TransportError
from pytest_mcpswarm.transport.base import MessageSink

#: Default cap on one line; a server streaming without newlines would otherwise eat our memory.
MAX_LINE_BYTES: Final = 64 * 1024 * 1024


class LineChannel:
    """Splits received bytes into lines for the sink and tracks write pause/resume for ``drain``."""

    __slots__ = ("_closed", "_drained", "_error", "_max", "_on_message", "_partial", "sink")

    def __init__(self, sink: MessageSink, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.sink = sink
        self._on_message = sink.on_message  # bound once: saves a lookup per message
        self._partial = b""
        self._max = max_line_bytes
        self._drained = asyncio.Event()
        self._drained.set()
        self._closed = False
        self._error: TransportError | None = None

    def data_received(self, chunk: bytes) -> None:
        """Deliver every complete line; raises TransportError when a line outgrows the cap."""
        if self._partial:
            chunk = self._partial + chunk
        end = chunk.rfind(b"\n")
        if end < 0:
            self._partial = chunk
        else:
            self._partial = chunk[end + 1 :]
            on_message = self._on_message
            for line in chunk[:end].split(b"\n"):
                # Blank keep-alive lines (bare CR from CRLF peers too) carry no message.
                if line and line != b"\r":
                    on_message(line)
        if len(self._partial) > self._max:
            self._partial = b""
            raise TransportError(
                f"the server sent a line longer than {self._max} bytes without a newline",
                kind="reset",
                fix="check that the server speaks newline-delimited JSON-RPC, or raise max_line_bytes",
            )

    def pause_writing(self) -> None:
        self._drained.clear()

    def resume_writing(self) -> None:
        self._drained.set()

    async def drain(self) -> None:
        if self._error is not None:
            raise self._error
        await self._drained.wait()
        if self._error is not None:
            raise self._error

    @property
    def closed(self) -> bool:
        return self._closed

    def lost(self, error: TransportError | None) -> None:
        """The stream ended; tell the sink exactly once and wake any ``drain``."""
        if self._closed:
            return
        self._closed = True
        self._error = error or TransportError("the connection is closed", kind="closed")
        self._drained.set()
        self.sink.on_closed(error)
