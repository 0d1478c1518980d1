"""The SVG chart primitives: ticks, axes, and that every data point is drawn."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET

import pytest

from pytest_mcpswarm.report.charts import (
    Axis,
    Chart,
    Series,
    Threshold,
    format_tick,
    linear_ticks,
    nice_step,
    percentile_label,
    render,
)

SVG = "{http://www.w3.org/2000/svg}"


def _polyline_points(svg: str) -> list[list[tuple[float, float]]]:
    root = ET.fromstring(svg)
    out = []
    for line in root.iter(f"{SVG}polyline"):
        if line.get("class") == "series":
            out.append(
                [(float(x), float(y)) for x, y in (p.split(",") for p in line.get("points", "").split())]
            )
    return out


@pytest.mark.parametrize(
    ("span", "step"), [(10, 2), (1, 0.2), (600, 200), (7, 2), (0.03, 0.01), (250, 50), (0, 1)]
)
def test_nice_step(span: float, step: float) -> None:
    assert nice_step(span) == pytest.approx(step)


def test_linear_ticks_cover_the_range() -> None:
    assert linear_ticks(0, 151.2) == [0, 50, 100, 150, 200]
    assert linear_ticks(0, 5, 6) == [0, 1, 2, 3, 4, 5]
    assert linear_ticks(0, 1.05, 5, integer=True) == [0, 1, 2]


@pytest.mark.parametrize(
    ("x", "label"), [(1, "0%"), (10, "90%"), (100, "99%"), (1000, "99.9%"), (1e6, "99.9999%")]
)
def test_percentile_labels(x: float, label: str) -> None:
    assert percentile_label(x) == label


def test_format_tick() -> None:
    assert [format_tick(v) for v in (0, 0.25, 12, 2500, 25000, 1.5e6)] == [
        "0",
        "0.25",
        "12",
        "2500",
        "25k",
        "1.5M",
    ]


def _chart(**kw: object) -> Chart:
    base: dict[str, object] = {
        "key": "latency",
        "title": "Latency",
        "x": Axis("time (s)", unit="s"),
        "y": Axis("latency (ms)"),
        "series": [Series("p99", [(0.5, 1.0), (1.5, 4.0), (2.5, None), (3.5, 2.0)], unit="ms")],
    }
    base.update(kw)
    return Chart(**base)  # type: ignore[arg-type]


def test_every_point_is_drawn_and_a_gap_splits_the_line() -> None:
    svg = render(_chart())
    ET.fromstring(svg)  # well-formed
    assert 'data-points="3"' in svg
    lines = _polyline_points(svg)
    assert [len(line) for line in lines] == [2, 1]
    xs = [x for line in lines for x, _ in line]
    ys = [y for line in lines for _, y in line]
    assert xs == sorted(xs) and len(set(xs)) == 3
    # SVG y grows downwards: the 4 ms point is the highest on screen.
    assert min(ys) == lines[0][1][1]
    assert svg.count("<circle") == 3
    assert "p99: 4 ms at 1.5 s" in svg


def test_axis_labels_and_units_are_in_the_svg() -> None:
    svg = render(_chart())
    texts = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    assert "time (s)" in texts and "latency (ms)" in texts and "Latency" in texts


def test_threshold_extends_the_y_range_and_is_labelled() -> None:
    svg = render(_chart(thresholds=[Threshold("SLA p99 < 10ms", 10.0)]))
    texts = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    assert "SLA p99 < 10ms" in texts
    ticks = [float(t) for t in texts if t and t.replace(".", "").isdigit()]
    assert max(ticks) >= 10  # the y axis reaches the threshold


def test_empty_chart_says_so() -> None:
    svg = render(_chart(series=[Series("p99", [(0.5, None)])], empty_note="no request completed"))
    assert 'data-points="0"' in svg
    assert "no request completed" in svg
    assert _polyline_points(svg) == []


def test_labels_are_escaped() -> None:
    svg = render(_chart(title="<script>x</script>", series=[Series("a&b", [(0, 1.0)])]))
    ET.fromstring(svg)
    assert "<script>" not in svg


def test_percentile_axis_is_logarithmic() -> None:
    chart = _chart(
        x=Axis("percentile", scale="percentile"), series=[Series("lat", [(1, 1.0), (10, 2.0), (100, 3.0)])]
    )
    (line,) = _polyline_points(render(chart))
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(line)]
    assert gaps[0] == pytest.approx(gaps[1], abs=0.2)  # 0% -> 90% as wide as 90% -> 99%
    assert re.search(r">99%<", render(chart))


def test_many_points_draw_the_line_without_markers() -> None:
    svg = render(_chart(series=[Series("rps", [(float(i), float(i % 7)) for i in range(500)])]))
    assert 'data-points="500"' in svg
    assert "<circle" not in svg


def test_a_far_threshold_is_noted_not_drawn() -> None:
    # Data under 4 ms, SLA at 50 ms: the axis stays on the data and the limit is named.
    svg = render(_chart(thresholds=[Threshold("SLA p99 < 50ms", 50.0)]))
    root = ET.fromstring(svg)
    assert not [e for e in root.iter(f"{SVG}line") if e.get("class") == "threshold"]
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "▲ SLA p99 < 50ms (far above the data)" in texts
    ticks = [float(t) for t in texts if t and t.replace(".", "").isdigit()]
    assert max(ticks) < 10
