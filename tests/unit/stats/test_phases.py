"""Phase statistics from 1 s windows: warm-up exclusion and phase views."""

from __future__ import annotations

import pytest

from pytest_mcpswarm.sla import evaluate, parse_sla
from pytest_mcpswarm.stats.phases import PhaseView, phase_stats, window_range
from pytest_mcpswarm.stats.snapshot import StatsSnapshot
from pytest_mcpswarm.stats.window import TimeSeries


def series(latencies_us: list[int], *, per_second: int = 100, errors: dict[int, int] | None = None,
           elapsed: float | None = None) -> TimeSeries:  # fmt: skip
    """Second i: ``per_second`` answers of ``latencies_us[i]`` us, plus ``errors[i]`` errors."""
    snap = StatsSnapshot()
    for second, latency in enumerate(latencies_us):
        for k in range(per_second):
            snap.record_ok("ping", second + k / per_second, latency)
        for k in range((errors or {}).get(second, 0)):
            snap.record_error("ping", second + k / 1000, "jsonrpc:-32000")
    snap.mark_elapsed(len(latencies_us) if elapsed is None else elapsed)
    return snap.series


def test_window_range_takes_whole_windows_inside_the_phase() -> None:
    s = series([1] * 10)
    assert window_range(s, 1.5, 6.5) == (2, 6)
    assert window_range(s, 3, None) == (3, 10)
    assert window_range(s, 2.2, 2.6) == (2, 3)  # shorter than a window: the one it overlaps


def test_warmup_windows_are_excluded_from_the_percentiles() -> None:
    s = series([50_000, 50_000, 1000, 1000, 1000, 1000])
    whole = phase_stats(s, 0)
    steady = phase_stats(s, 2)
    assert whole.value("p99") == pytest.approx(50_000, rel=1e-3)
    assert steady.value("p99") == pytest.approx(1000, rel=1e-3)
    assert steady.ok == 400 and steady.seconds == 4 and steady.value("rps") == 100


def test_the_last_phase_keeps_late_answers_but_divides_by_sending_time() -> None:
    s = series([1000, 1000, 1000, 900_000], elapsed=3.0)  # second 3: answers after the end
    stats = phase_stats(s, 1)
    assert stats.ok == 300 and stats.seconds == 2.0
    assert stats.value("max") == pytest.approx(900_000, rel=1e-3)


def test_phase_view_answers_slas_on_the_steady_state_only() -> None:
    s = series([90_000, 1000, 1000, 1000, 2000], errors={0: 50})
    view = PhaseView(s, 1)
    assert evaluate(parse_sla("p99<5ms, error_rate==0, rps>=99"), view).passed
    assert not evaluate(parse_sla("p99<5ms, error_rate==0"), PhaseView(s, 0)).passed
    windows = view.windows("p99", 2)
    assert [start for start, _ in windows] == [1, 2, 3]
    assert windows[-1][1] == pytest.approx(2000, rel=1e-3)
