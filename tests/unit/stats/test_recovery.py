"""Recovery time from per-second rows: every rule of stats/recovery.py, on hand-made series."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_mcpswarm.stats.recovery import baseline, failure_rate, healthy, recovery_time
from pytest_mcpswarm.stats.window import TimeSeries, Window


def row(t: int, *, rps: float = 100.0, p99: float | None = 2.0, errors: int = 0, timeouts: int = 0,
        not_sent: int = 0) -> dict[str, Any]:  # fmt: skip
    return {"t": t, "rps": rps, "p99_ms": p99, "errors": errors, "timeouts": timeouts, "not_sent": not_sent}


def series(bad: dict[int, dict[str, Any]], n: int = 10) -> list[dict[str, Any]]:
    return [row(t, **bad.get(t, {})) for t in range(n)]


def test_failure_rate_counts_errors_timeouts_and_not_sent() -> None:
    # rps 100 with 10 errors: 90 ok; 10 errors + 5 timeouts + 5 not sent = 20 of 110.
    assert failure_rate(row(0, rps=100, errors=10, timeouts=5, not_sent=5)) == pytest.approx(20 / 110)
    assert failure_rate(row(0, rps=0, p99=None)) == 0.0


def test_baseline_skips_first_second_and_partial_fault_second() -> None:
    rows = series({0: {"p99": 50.0, "rps": 10}, 3: {"p99": 40.0}}, n=6)
    base = baseline(rows, fault_start_s=3.5)
    assert base.seconds == 2  # t=1, t=2; t=0 skipped, t=3 holds fault time
    assert base.p99_ms == 2.0
    assert base.rps == 100.0
    assert base.failure_rate == 0.0


def test_baseline_needs_a_whole_pre_fault_second() -> None:
    with pytest.raises(ValueError, match="no whole second"):
        baseline(series({}), fault_start_s=1.5)


def test_clean_recovery_right_at_fault_end() -> None:
    rows = series({3: {"rps": 0, "p99": None}, 4: {"rps": 0, "p99": None}})
    rec = recovery_time(rows, 3.0, 5.0)
    assert rec.recovered and rec.recovered_at_s == 5 and rec.recovery_s == 0.0


def test_slow_tail_delays_recovery_until_p99_is_back() -> None:
    rows = series({3: {"errors": 50}, 4: {"errors": 50}, 5: {"p99": 300.0}, 6: {"p99": 2.5}, 7: {}})
    # t=6: p99 2.5 ms > 2.2 (10%) but within the 1 ms slack; slack 0 makes it wait for t=7.
    assert recovery_time(rows, 3.0, 5.0).recovered_at_s == 6
    assert recovery_time(rows, 3.0, 5.0, p99_slack_ms=0.0).recovered_at_s == 7


def test_throughput_must_come_back_within_tolerance() -> None:
    rows = series({3: {"rps": 0, "p99": None}, 5: {"rps": 80}, 6: {"rps": 91}})
    rec = recovery_time(rows, 3.0, 4.5)
    assert rec.recovered_at_s == 4 and rec.recovery_s == 0.0  # t=4 is healthy again (rps 100)
    rows[4] = row(4, rps=50)
    rec = recovery_time(rows, 3.0, 4.5)
    assert rec.recovered_at_s == 6 and rec.recovery_s == pytest.approx(1.5)


def test_errors_after_the_fault_delay_recovery() -> None:
    rows = series({3: {"errors": 100}, 4: {"timeouts": 30}, 5: {"not_sent": 1}})
    assert recovery_time(rows, 3.0, 4.0).recovered_at_s == 6
    assert recovery_time(rows, 3.0, 4.0, error_slack=0.02).recovered_at_s == 5


def test_baseline_with_errors_allows_the_same_rate() -> None:
    rows = [row(t, errors=1) for t in range(8)]
    rows[3] = row(3, errors=60)
    base = baseline(rows, 3.0)
    assert base.failure_rate == pytest.approx(2 / 200)
    assert healthy(rows[5], base)
    assert recovery_time(rows, 3.0, 4.0).recovered_at_s == 4


def test_skip_first_s_starts_the_baseline_at_the_reference_phase() -> None:
    # t=0..2 a slow ramp, then the reference phase at 2 ms, the fault over [5, 7), t=7 still slow.
    rows = series({0: {"p99": 50.0}, 1: {"p99": 50.0}, 2: {"p99": 50.0}, 5: {"errors": 90}, 7: {"p99": 30.0}})
    assert recovery_time(rows, 5.0, 7.0).recovered_at_s == 7  # the ramp's 50 ms made 30 ms look normal
    rec = recovery_time(rows, 5.0, 7.0, skip_first_s=3)
    assert rec.baseline.seconds == 2 and rec.baseline.p99_ms == 2.0
    assert rec.recovered_at_s == 8 and rec.recovery_s == 1.0


def test_never_recovered_and_drain_seconds_are_ignored() -> None:
    rows = series({t: {"p99": 900.0} for t in range(3, 8)} | {8: {}, 9: {}})
    assert recovery_time(rows, 3.0, 5.0, run_end_s=8.0).recovered is False
    rec = recovery_time(rows, 3.0, 5.0, run_end_s=8.0)
    assert rec.recovered_at_s is None and rec.recovery_s is None
    assert recovery_time(rows, 3.0, 5.0).recovered_at_s == 8


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="not a time span"):
        recovery_time(series({}), 5.0, 4.0)
    with pytest.raises(ValueError, match="tolerance"):
        recovery_time(series({}), 3.0, 4.0, tolerance=1.5)


def test_works_on_real_time_series_rows() -> None:
    ts = TimeSeries()
    for t in range(8):
        win = Window()
        stall = t in (3, 4)
        for i in range(100):
            win.latency.record(200_000 + i if stall else 1_000 + i)
        win.ok = 100
        if t == 4:
            win.timeouts = 20
        ts.windows[t] = win
    ts.mark_elapsed(8.0)
    rec = recovery_time(ts.rows(), 3.0, 5.0, run_end_s=ts.elapsed_s)
    assert rec.baseline.p99_ms == pytest.approx(1.099, rel=0.01)  # 3 significant digits
    assert rec.recovered_at_s == 5 and rec.recovery_s == 0.0
