"""Connection-level faults: resetting new connections (``refuse``) and slow reads (``slowread``).

Slow reads work on the socket, not on parsed messages: after a read of ``n``
bytes the connection stops reading for as long as ``n`` bytes take at the
configured rate.  The kernel's receive buffer then fills, the client's send
buffer fills behind it, and the client's writes back up, which is what a
server that cannot keep up with its input looks like from outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Final

from pytest_mcpswarm.server.faults import FaultInjector

#: Pauses shorter than this are folded into the next one (a timer per tiny read costs more than it shows).
MIN_PAUSE_S: Final = 0.002
_LINGER_RESET: Final = struct.pack("ii", 1, 0)


def reset(transport: asyncio.BaseTransport) -> None:
    """Abort with a TCP RST (SO_LINGER 0), the way an overloaded server or proxy drops a connection."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()  # type: ignore[attr-defined]


class ReadThrottle:
    """Paces one connection's reads to the injector's slow-read rate (a no-op when none is active)."""

    __slots__ = ("_free_at", "_injector", "_loop", "_timer", "_transport")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, transport: asyncio.BaseTransport, injector: FaultInjector
    ) -> None:
        self._loop = loop
        self._transport = transport
        self._injector = injector
        self._free_at = 0.0  # loop time at which the bytes read so far are "paid for"
        self._timer: asyncio.TimerHandle | None = None

    def consumed(self, nbytes: int) -> None:
        """``nbytes`` were just read; stop reading until they have been paid for at the set rate."""
        rate = self._injector.slowread_rate()
        if rate is None:
            return
        now = self._loop.time()
        self._free_at = max(self._free_at, now) + nbytes / rate
        pause = self._free_at - now
        if pause < MIN_PAUSE_S or self._timer is not None:
            return
        transport = self._transport
        if transport.is_closing():
            return
        transport.pause_reading()  # type: ignore[attr-defined]
        self._injector.count_slowread(pause)
        self._timer = self._loop.call_later(pause, self._resume)

    def _resume(self) -> None:
        self._timer = None
        transport = self._transport
        if not transport.is_closing():
            transport.resume_reading()  # type: ignore[attr-defined]

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
