"""Wake-ups at absolute ``CLOCK_MONOTONIC`` times, precise to the nanosecond, for the scheduler tick.

asyncio's timers cannot hold a tick: uvloop (libuv) rounds every timer to
whole milliseconds of a cached clock, so "sleep 1 ms after the work" came out
as a 1.4–1.7 ms period that also grew with the work done in a tick.  The
period then depended on how the connections were split over workers (one
worker with 8 connections wrote 607 times a connection a second, two with 4
each 708 times), so splitting changed how many requests a write carried and
what each cost, and every request waited longer than the 1 ms tick the plan
states.

A ``timerfd`` armed with absolute deadlines on the grid ``start + k * tick``
fixes both: the period is the tick, whatever a tick costs, and every worker
of a run wakes on the same grid.  ``time.perf_counter_ns`` reads the same
clock on Linux.  Without ``timerfd`` (not Linux) it falls back to
``asyncio.sleep``.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import time
from typing import Final

CLOCK_MONOTONIC: Final = 1
TFD_NONBLOCK: Final = os.O_NONBLOCK
TFD_CLOEXEC: Final = os.O_CLOEXEC
TFD_TIMER_ABSTIME: Final = 1


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.timerfd_create.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.timerfd_settime.argtypes = (
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(_Itimerspec),
            ctypes.c_void_p,
        )
    except (OSError, AttributeError):
        return None
    return libc


_LIBC: Final = _libc()


class Ticker:
    """``await ticker.until(deadline_ns)`` returns at ``deadline_ns`` on ``perf_counter_ns``'s clock.

    One waiter at a time (the engine's scheduler); ``close`` releases the fd.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._waiter: asyncio.Future[None] | None = None
        self._spec = _Itimerspec()
        self._spec_ref = ctypes.byref(self._spec)
        self._fd = -1
        if _LIBC is not None and time.get_clock_info("perf_counter").implementation.startswith(
            "clock_gettime(CLOCK_MONOTONIC)"
        ):
            self._fd = _LIBC.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if self._fd >= 0:
            self._loop.add_reader(self._fd, self._fire)

    @property
    def precise(self) -> bool:
        """True with a ``timerfd``; False on the ``asyncio.sleep`` fallback (millisecond timers)."""
        return self._fd >= 0

    def until(self, deadline_ns: int) -> asyncio.Future[None]:
        """A future done at ``deadline_ns`` (at once if it has passed)."""
        if self._fd < 0:
            delay = max(0.0, (deadline_ns - time.perf_counter_ns()) / 1e9)
            return asyncio.ensure_future(asyncio.sleep(delay))
        waiter = self._loop.create_future()
        self._waiter = waiter
        value = self._spec.it_value
        value.tv_sec, value.tv_nsec = divmod(max(deadline_ns, 1), 1_000_000_000)
        assert _LIBC is not None
        if _LIBC.timerfd_settime(self._fd, TFD_TIMER_ABSTIME, self._spec_ref, None) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"timerfd_settime: {os.strerror(errno)}")
        return waiter

    def _fire(self) -> None:
        try:
            os.read(self._fd, 8)  # the expiry stays readable until read: one wake-up per deadline
        except BlockingIOError:
            return
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
        if self._waiter is not None and not self._waiter.done():
            self._waiter.cancel()
        self._waiter = None


def grid_after(now_ns: int, origin_ns: int, tick_ns: int) -> int:
    """The first point of the grid ``origin + k * tick`` strictly after ``now_ns``."""
    if tick_ns <= 0:
        return now_ns
    return now_ns + tick_ns - (now_ns - origin_ns) % tick_ns
