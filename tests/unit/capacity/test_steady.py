"""Steady-state views: warm-up and drain windows are left out, the rest is judged by the SLA language."""

from __future__ import annotations

import pytest

from pytest_mcpswarm.capacity.steady import SteadyView, steady_series
from pytest_mcpswarm.sla import evaluate, parse_sla
from pytest_mcpswarm.stats.window import TimeSeries


def series_with(latency_ms_by_second: list[int], per_second: int = 100) -> TimeSeries:
    ts = TimeSeries(float(len(latency_ms_by_second)))
    for second, ms in enumerate(latency_ms_by_second):
        win = ts.window(second)
        for _ in range(per_second):
            win.latency.record(ms * 1000)
        win.ok += per_second
    return ts


def test_warmup_and_drain_are_left_out() -> None:
    # Second 0 is a slow warm-up, seconds 1-3 steady, second 4 a drain tail.
    ts = series_with([900, 10, 10, 10, 700])
    view = SteadyView(steady_series(ts, 1, 4))
    assert view.overall("p99") == pytest.approx(10_000, rel=0.01)
    assert view.overall("rps") == pytest.approx(100.0)
    assert evaluate(parse_sla("p99<50ms, rps>=100"), view).passed
    whole = evaluate(parse_sla("p99<50ms"), SteadyView(steady_series(ts, 0, 5)))
    assert not whole.passed
    assert ts.windows[0].ok == 100  # the source is not modified


def test_windowed_checks_apply_inside_the_steady_span() -> None:
    ts = series_with([10, 10, 80, 10])
    view = SteadyView(steady_series(ts, 0, 4))
    result = evaluate(parse_sla("p99[1s]<50ms"), view).results[0]
    assert not result.passed and result.worst_window_s == 2 and result.failed_windows == 1


def test_a_steady_span_without_answers_has_no_latency_and_zero_rate() -> None:
    view = SteadyView(steady_series(TimeSeries(5.0), 1, 4))
    assert view.overall("p99") is None
    assert view.overall("rps") == 0.0
    assert not evaluate(parse_sla("p99<50ms"), view).passed


@pytest.mark.parametrize(("start", "stop"), [(-1, 2), (3, 3), (4, 2)])
def test_bad_spans(start: int, stop: int) -> None:
    with pytest.raises(ValueError, match="steady span"):
        steady_series(TimeSeries(), start, stop)
