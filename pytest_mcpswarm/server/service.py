"""Service time and the write gate: --delay-ms, --max-concurrency and the stall fault.

Deferred work is a ``loop.call_later`` timer, not a task: a timer costs a
handle, a task costs a coroutine frame, a future and several callbacks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from pytest_mcpswarm.server.faults import FaultInjector, Stall


class ServiceGate:
    """Runs calls that need service time, at most ``max_concurrency`` at once (0 = no limit)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_concurrency: int) -> None:
        self._loop = loop
        self._limit = max_concurrency
        self._busy = 0
        self._queue: deque[tuple[float, Callable[..., None], tuple[Any, ...]]] = deque()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def submit(self, seconds: float, done: Callable[..., None], *args: Any) -> None:
        """Call ``done(*args)`` once ``seconds`` of service have elapsed, after queueing for a slot."""
        if not self._limit:
            self._loop.call_later(seconds, done, *args)
        elif self._busy < self._limit:
            self._busy += 1
            self._loop.call_later(seconds, self._finish, done, args)
        else:
            self._queue.append((seconds, done, args))

    def _finish(self, done: Callable[..., None], args: tuple[Any, ...]) -> None:
        try:
            done(*args)
        finally:
            if self._queue:
                seconds, nxt, nargs = self._queue.popleft()
                self._loop.call_later(seconds, self._finish, nxt, nargs)
            else:
                self._busy -= 1


class WriteGate:
    """Every reply goes out through here so the stall fault can hold all of them at once."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stall: Stall | None, injector: FaultInjector) -> None:
        self.stalled = False
        self._held: list[tuple[asyncio.BaseTransport, bytes]] = []
        self._loop = loop
        self._stall = stall
        self._injector = injector
        self._timer: asyncio.TimerHandle | None = None
        if stall is not None:
            self._timer = loop.call_later(stall.every_s - stall.pause_s, self._begin)

    def write(self, transport: asyncio.Transport, data: bytes) -> None:
        if self.stalled:
            self._held.append((transport, data))
        else:
            transport.write(data)

    def _begin(self) -> None:
        assert self._stall is not None
        if not self._injector.active("stall"):  # outside its time window: skip this period
            self._timer = self._loop.call_later(self._stall.every_s, self._begin)
            return
        self.stalled = True
        self._injector.count_stall(self._stall.pause_s)
        self._timer = self._loop.call_later(self._stall.pause_s, self._end)

    def _end(self) -> None:
        assert self._stall is not None
        self.stalled = False
        held, self._held = self._held, []
        for transport, data in held:
            if not transport.is_closing():
                transport.write(data)  # type: ignore[attr-defined]
        self._timer = self._loop.call_later(self._stall.every_s - self._stall.pause_s, self._begin)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
