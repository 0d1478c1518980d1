"""The scheduler's tick: the grid arithmetic, and timerfd wake-ups that are never early and leak no fd."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest
import uvloop

from pytest_mcpswarm.load import ticker as ticker_module
from pytest_mcpswarm.load.engine import _MAX_SLEEP_NS, Engine
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.load.requests import MethodSpec
from pytest_mcpswarm.load.shapes import Stage
from pytest_mcpswarm.load.ticker import Ticker, grid_after

_MS = 1_000_000

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timerfd is Linux-only")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (1000 * _MS, 1001 * _MS),  # on a grid point: the next one, strictly after
        (1000 * _MS + 1, 1001 * _MS),
        (1001 * _MS - 1, 1001 * _MS),
        (998 * _MS + 300, 999 * _MS),  # before the origin (connections open ahead of t=0)
    ],
)
def test_grid_after_is_the_first_grid_point_strictly_after_now(now: int, expected: int) -> None:
    assert grid_after(now, 1000 * _MS, _MS) == expected


def test_grid_after_a_zero_tick_is_now() -> None:
    assert grid_after(123_456, 1000, 0) == 123_456


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@linux_only
@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_until_never_returns_before_its_deadline_and_close_releases_the_fd(loop_kind: str) -> None:
    woke_late: list[int] = []
    fds: list[int] = []

    async def main() -> None:
        fds.append(_open_fds())
        tick = Ticker()
        assert tick.precise
        try:
            for delay_ns in (0, 300_000, 1 * _MS, 2 * _MS + 123_456):
                deadline = time.perf_counter_ns() + delay_ns
                await tick.until(deadline)
                woke_late.append(time.perf_counter_ns() - deadline)
            await tick.until(time.perf_counter_ns() - 5 * _MS)  # passed already: returns at once
        finally:
            tick.close()
        tick.close()  # twice is harmless
        fds.append(_open_fds())

    if loop_kind == "uvloop":
        uvloop.run(main())
    else:
        asyncio.run(main())
    assert len(woke_late) == 4
    assert min(woke_late) >= 0, woke_late
    assert fds[0] == fds[1]


@linux_only
async def test_close_cancels_a_pending_wait() -> None:
    tick = Ticker()
    waiter = tick.until(time.perf_counter_ns() + 60 * 1_000 * _MS)
    tick.close()
    with pytest.raises(asyncio.CancelledError):
        await waiter


async def test_without_timerfd_it_falls_back_to_asyncio_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ticker_module, "_LIBC", None)
    tick = Ticker()
    assert not tick.precise
    await tick.until(time.perf_counter_ns() + 2 * _MS)
    tick.close()


def _engine(tick_s: float = 0.001) -> Engine:
    plan = RunPlan(
        target="ws://127.0.0.1:1/mcp/ws",
        methods=(MethodSpec("ping", None, 1.0),),
        stages=(Stage(10.0, 1, 1000.0),),
        start_connections=1,
        tick_s=tick_s,
    )
    engine = Engine(plan)
    engine.start_ns = 1000 * _MS
    engine.end_ns = engine.start_ns + 10_000 * _MS
    return engine


def test_a_send_already_due_waits_for_the_next_tick_of_the_runs_grid() -> None:
    engine = _engine()
    now = engine.start_ns + 5 * _MS + 200_000
    assert engine.wake_at(now, now - 50_000, None) == engine.start_ns + 6 * _MS


def test_a_sparse_send_wakes_the_scheduler_at_its_own_time_not_on_the_grid() -> None:
    engine = _engine()
    now = engine.start_ns + 5 * _MS
    assert engine.wake_at(now, now + 3 * _MS + 777, None) == now + 3 * _MS + 777


def test_the_scheduler_never_sleeps_past_a_connection_start_or_the_cap() -> None:
    engine = _engine()
    now = engine.start_ns + 5 * _MS
    assert engine.wake_at(now, now + 8 * _MS, now + 4 * _MS) == now + 4 * _MS
    assert engine.wake_at(now, now + 60 * 1_000 * _MS, None) == now + _MAX_SLEEP_NS
    assert engine.wake_at(now, None, None) == now + _MAX_SLEEP_NS  # closed loop: the roll, stops
    engine.end_ns = now + 2 * _MS
    assert engine.wake_at(now, None, None) == now + 2 * _MS


def test_a_zero_tick_wakes_exactly_at_each_send() -> None:
    engine = _engine(tick_s=0.0)
    now = engine.start_ns + 5 * _MS + 200_000
    assert engine.wake_at(now, now + 10, None) == now + 10
    assert engine.wake_at(now, now - 10, None) == now  # overdue: at once
