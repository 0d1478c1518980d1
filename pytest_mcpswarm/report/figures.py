"""The charts of one scenario, built from its ``mcpswarm/1`` JSON dict.

Five charts: latency percentiles, throughput, connections and errors over
time (from ``timeseries``, one row per second), and the latency distribution
(the percentile spectrum of the merged ``histogram``).  SLA limits that a
chart can show are drawn on it as dashed lines, so a reader sees at once
which second crossed which limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pytest_mcpswarm.report.charts import PALETTE, Axis, Chart, Point, Series, Threshold, render
from pytest_mcpswarm.stats.histogram import LatencyHistogram

#: SLA latency units -> milliseconds.
_TO_MS: Final = {"us": 0.001, "µs": 0.001, "ms": 1.0, "s": 1000.0}
_LATENCY_COLUMNS: Final = (
    ("p50", "p50_ms", PALETTE[0]),
    ("p95", "p95_ms", PALETTE[1]),
    ("p99", "p99_ms", PALETTE[2]),
)
#: Points per decade of the percentile axis.
_SPECTRUM_STEPS: Final = 10
#: The spectrum stops at 99.9999 % (1 in a million).
_SPECTRUM_DECADES: Final = 6
_TIME: Final = Axis("time since start (s)", unit="s")


def _rows(scenario: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Timeseries rows inside the run: a row starting at or after the end is not part of it."""
    rows: list[Mapping[str, Any]] = scenario.get("timeseries") or []
    duration = scenario.get("duration_s")
    if isinstance(duration, int | float) and duration > 0:
        rows = [r for r in rows if r.get("t", 0) < duration]
    return rows


def _column(rows: list[Mapping[str, Any]], key: str) -> list[Point]:
    """``(mid-second, value)``: row ``t`` covers the second [t, t+1), so it is drawn at t + 0.5."""
    out: list[Point] = []
    for row in rows:
        value = row.get(key)
        out.append((float(row["t"]) + 0.5, None if value is None else float(value)))
    return out


def _x_range(scenario: Mapping[str, Any], rows: list[Mapping[str, Any]]) -> tuple[float, float]:
    duration = scenario.get("duration_s")
    last = max((float(r["t"]) + 1 for r in rows), default=0.0)
    end = float(duration) if isinstance(duration, int | float) and duration > 0 else last
    return 0.0, max(end, last)


def sla_checks(scenario: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    sla = scenario.get("sla") or {}
    checks: list[Mapping[str, Any]] = sla.get("checks") or []
    return checks


def _check_label(check: Mapping[str, Any]) -> str:
    unit = check.get("unit") or ""
    return f"SLA {check['metric']} {check['op']} {check['threshold']:g}{unit}"


def _latency_thresholds(scenario: Mapping[str, Any]) -> list[Threshold]:
    out = []
    for check in sla_checks(scenario):
        base = str(check.get("metric", "")).split("[", 1)[0]
        factor = _TO_MS.get(str(check.get("unit")))
        if base.startswith("p") and factor is not None and check.get("threshold") is not None:
            out.append(Threshold(_check_label(check), float(check["threshold"]) * factor))
    return out


def _rps_thresholds(scenario: Mapping[str, Any]) -> list[Threshold]:
    out = []
    for check in sla_checks(scenario):
        if str(check.get("metric", "")).split("[", 1)[0] == "rps" and check.get("threshold") is not None:
            out.append(Threshold(_check_label(check), float(check["threshold"])))
    params = scenario.get("params") or {}
    offered = params.get("offered_rps")
    # A single stage is a flat offered rate; a ramp's mean would be a misleading line.
    if isinstance(offered, int | float) and offered > 0 and len(params.get("stages") or []) <= 1:
        out.append(Threshold(f"offered {offered:,.0f} req/s", float(offered), color="#777777"))
    return out


def latency_over_time(scenario: Mapping[str, Any]) -> Chart:
    rows = _rows(scenario)
    return Chart(
        key="latency",
        title="Latency percentiles per second",
        x=_TIME,
        y=Axis("latency (ms)"),
        series=[Series(label, _column(rows, key), color, "ms") for label, key, color in _LATENCY_COLUMNS],
        thresholds=_latency_thresholds(scenario),
        x_range=_x_range(scenario, rows),
        empty_note="no request completed",
    )


def throughput_over_time(scenario: Mapping[str, Any]) -> Chart:
    rows = _rows(scenario)
    return Chart(
        key="rps",
        title="Throughput (answered requests per second)",
        x=_TIME,
        y=Axis("requests / s"),
        series=[Series("answered req/s", _column(rows, "rps"), PALETTE[0], "req/s")],
        thresholds=_rps_thresholds(scenario),
        x_range=_x_range(scenario, rows),
    )


def connections_over_time(scenario: Mapping[str, Any]) -> Chart:
    rows = _rows(scenario)
    return Chart(
        key="connections",
        title="Open connections",
        x=_TIME,
        y=Axis("connections", integer=True),
        series=[Series("open connections", _column(rows, "connections"), PALETTE[3])],
        x_range=_x_range(scenario, rows),
    )


def errors_over_time(scenario: Mapping[str, Any]) -> Chart:
    rows = _rows(scenario)
    total = sum(int(r.get("errors") or 0) for r in rows)
    return Chart(
        key="errors",
        title="Errors per second",
        x=_TIME,
        y=Axis("errors / s", integer=True),
        series=[Series("errors/s", _column(rows, "errors"), PALETTE[2], "errors")],
        x_range=_x_range(scenario, rows),
        note=f"{total:,} errors in the whole run" if rows else "",
    )


def spectrum_points(hist: LatencyHistogram) -> list[Point]:
    """``(1 / (1 - q), latency ms)`` from 0 % up to the last sample, ``_SPECTRUM_STEPS`` per decade.

    The final point is the maximum, placed at ``x = total count``: the rank of
    the slowest request among N is the ``1 - 1/N`` quantile.  A percentile is
    the top of its HdrHistogram slot, which can lie above the exact maximum;
    it is drawn at the maximum, so the curve never rises past the last point.
    """
    total = hist.total_count
    if not total:
        return []
    top = min(float(total), 10.0**_SPECTRUM_DECADES)
    xs: list[float] = []
    k = 0
    while True:
        x = 10.0 ** (k / _SPECTRUM_STEPS)
        if x >= top:
            break
        xs.append(x)
        k += 1
    highest = hist.max_us or 0
    values = hist.percentiles([(1 - 1 / x) * 100 for x in xs])
    points: list[Point] = [(x, min(v, highest) / 1000) for x, v in zip(xs, values, strict=True)]
    points.append((max(top, 1.0), highest / 1000))
    return points


def scenario_histogram(scenario: Mapping[str, Any]) -> LatencyHistogram | None:
    """The merged latency histogram, with its exact max from ``latency_ms.max``; None if absent."""
    blob = scenario.get("histogram")
    if not blob:
        return None
    highest = (scenario.get("latency_ms") or {}).get("max")
    max_us = round(highest * 1000) if isinstance(highest, int | float) else None
    return LatencyHistogram.decode(blob, max_us=max_us)


def latency_distribution(scenario: Mapping[str, Any]) -> Chart:
    hist = scenario_histogram(scenario)
    points = spectrum_points(hist) if hist is not None else []
    return Chart(
        key="distribution",
        title="Latency distribution (whole run, percentile spectrum)",
        x=Axis("percentile (log scale)", scale="percentile"),
        y=Axis("latency (ms)"),
        series=[Series("latency", points, PALETTE[4], "ms")],
        thresholds=_latency_thresholds(scenario),
        empty_note="no request completed",
    )


def scenario_charts(scenario: Mapping[str, Any]) -> list[Chart]:
    return [
        latency_over_time(scenario),
        throughput_over_time(scenario),
        latency_distribution(scenario),
        errors_over_time(scenario),
        connections_over_time(scenario),
    ]


def scenario_svgs(scenario: Mapping[str, Any]) -> list[str]:
    return [render(chart) for chart in scenario_charts(scenario)]
