"""The five charts of a scenario, from its JSON dict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_mcpswarm.report.charts import render
from pytest_mcpswarm.report.figures import (
    latency_distribution,
    latency_over_time,
    scenario_charts,
    scenario_histogram,
    spectrum_points,
    throughput_over_time,
)
from pytest_mcpswarm.stats.histogram import LatencyHistogram

Factory = Callable[..., dict[str, Any]]


def test_five_charts_each_with_points(scenario: Factory) -> None:
    charts = scenario_charts(scenario())
    assert [c.key for c in charts] == ["latency", "rps", "distribution", "errors", "connections"]
    for chart in charts:
        svg = render(chart)
        assert 'data-points="0"' not in svg, chart.key


def test_rows_at_or_after_the_end_are_not_drawn(scenario: Factory) -> None:
    # The row t=5 of a 5 s run is an empty second after the end: not a drop to 0 req/s.
    chart = throughput_over_time(scenario())
    (series,) = chart.series
    assert [x for x, _ in series.points] == [0.5, 1.5, 2.5, 3.5, 4.5]
    assert chart.x_range == (0.0, 5.0)


def test_latency_series_are_the_timeseries_columns(scenario: Factory) -> None:
    chart = latency_over_time(scenario())
    by_label = {s.label: [y for _, y in s.points] for s in chart.series}
    assert by_label["p99"] == [9.0, 11.0, 13.0, 15.0, 17.0]
    assert by_label["p50"] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_sla_limits_become_dashed_lines_in_ms(scenario: Factory, sla_check: Any) -> None:
    sla = {"passed": False, "message": "", "checks": [
        sla_check("p99", "<", 50.0, 60.0, "ms", passed=False),
        sla_check("p95", "<", 20000.0, 9.0, "us", passed=True),
        sla_check("p99[2s]", "<", 0.1, 0.2, "s", passed=False, window_s=2),
        sla_check("error_rate", "<", 0.1, 0.0, "%", passed=True),
        sla_check("rps", ">=", 450.0, 498.0, "", passed=True),
    ]}  # fmt: skip
    s = scenario(sla=sla)
    lat = {t.label: t.y for t in latency_over_time(s).thresholds}
    assert lat == {"SLA p99 < 50ms": 50.0, "SLA p95 < 20000us": 20.0, "SLA p99[2s] < 0.1s": 100.0}
    rps = {t.label: t.y for t in throughput_over_time(s).thresholds}
    assert rps == {"SLA rps >= 450": 450.0, "offered 500 req/s": 500.0}


def test_a_ramp_has_no_flat_offered_line(scenario: Factory) -> None:
    s = scenario()
    s["params"]["stages"] = [{"duration_s": 1, "connections": 1, "rate": 1}] * 2
    assert throughput_over_time(s).thresholds == []


def test_spectrum_of_a_uniform_distribution() -> None:
    hist = LatencyHistogram()
    hist.record_many(range(1, 100_001))  # 1 us .. 100 ms, uniform
    points = spectrum_points(hist)
    xs = [x for x, _ in points]
    ys = [y for _, y in points if y is not None]
    assert xs[0] == 1.0 and xs[-1] == 100_000
    assert ys == sorted(ys)
    median = ys[3]  # x = 10**0.3 ~ 2: the 50th percentile
    assert xs[3] == pytest.approx(10**0.3)
    assert median == pytest.approx(100 * (1 - 10**-0.3), rel=0.01)
    assert ys[10] == pytest.approx(90.0, rel=0.01)  # x = 10: p90
    assert ys[-1] == 100.0  # the exact max
    assert len(points) == 51  # 10 per decade up to 1e5, then the max


def test_spectrum_of_nothing_is_empty() -> None:
    assert spectrum_points(LatencyHistogram()) == []


def test_distribution_reads_the_encoded_histogram_with_its_exact_max(scenario: Factory) -> None:
    s = scenario(latencies_us=[1234, 5678, 99_999])
    hist = scenario_histogram(s)
    assert hist is not None and hist.total_count == 3 and hist.max_us == 99_999
    (series,) = latency_distribution(s).series
    assert series.points[-1] == (3.0, 99.999)


def test_distribution_without_histogram_is_an_empty_chart(scenario: Factory) -> None:
    s = scenario(histogram=None)
    assert 'data-points="0"' in render(latency_distribution(s))
