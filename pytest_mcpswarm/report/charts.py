"""Inline SVG charts, drawn in Python: no JavaScript, no fonts or files to fetch.

A chart is a plain string of ``<svg>`` markup that can be dropped into any
HTML page (the standalone report, a pytest-html extra) and still renders when
the page is opened offline from disk.  Every data point is a vertex of a
``<polyline>`` and, when there are few enough of them to see, a ``<circle>``
with a ``<title>`` tooltip; the ``<svg>`` carries ``data-points`` with the
number of points drawn, so tests (and readers of the DOM) can tell a chart
with data from an empty frame.

Two axis kinds: linear, and the percentile axis of HdrHistogram plots, where
x is ``1 / (1 - q)`` on a log scale so that 90 %, 99 % and 99.9 % are evenly
spaced.  Rendering is pure: same input, same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Final

#: Colour-blind-safe palette (Okabe-Ito), in the order series use it.
PALETTE: Final = ("#0072B2", "#E69F00", "#D55E00", "#009E73", "#CC79A7", "#56B4E9")
#: Above this many points per series, draw the line only (circles would blur into it).
MAX_MARKERS: Final = 120

WIDTH: Final = 600
HEIGHT: Final = 270
_LEFT, _RIGHT, _TOP, _BOTTOM = 62, 30, 46, 46
#: A threshold further above the data than this many times its maximum is noted, not drawn:
#: stretching the axis to it would flatten the data into the bottom of the plot.
THRESHOLD_REACH: Final = 3.0

Point = tuple[float, float | None]


@dataclass(frozen=True, slots=True)
class Series:
    """One line.  A ``None`` y leaves a gap (no sample in that interval)."""

    label: str
    points: Sequence[Point]
    color: str | None = None
    #: Tooltip unit for the y value, e.g. "ms" or "req/s".
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Threshold:
    """A dashed horizontal reference line, e.g. an SLA limit or the offered rate."""

    label: str
    y: float
    color: str = "#B00020"


@dataclass(frozen=True, slots=True)
class Axis:
    label: str
    #: "linear" or "percentile" (x only: values are 1 / (1 - q), drawn on a log scale).
    scale: str = "linear"
    #: Unit of a value on this axis, for tooltips ("s", "ms").
    unit: str = ""
    #: Counts: ticks at whole numbers only.
    integer: bool = False


@dataclass(frozen=True, slots=True)
class Chart:
    """What to draw.  ``key`` names the chart in the DOM (``data-chart``)."""

    key: str
    title: str
    x: Axis
    y: Axis
    series: Sequence[Series]
    thresholds: Sequence[Threshold] = field(default_factory=tuple)
    #: Forced x range (for example the run's duration); None: from the data.
    x_range: tuple[float, float] | None = None
    #: Shown instead of the plot when no series has a point.
    empty_note: str = "no data"
    #: A remark in the plot's top right corner, e.g. "no errors in the whole run".
    note: str = ""


def nice_step(span: float, target_ticks: int = 5) -> float:
    """A tick step of 1, 2, 2.5 or 5 times a power of ten giving about ``target_ticks`` ticks."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(target_ticks, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for mult in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= mult * power:
            return mult * power
    return 10.0 * power


def linear_ticks(lo: float, hi: float, target_ticks: int = 5, *, integer: bool = False) -> list[float]:
    """Ticks from ``lo`` rounded down to ``hi`` rounded up, at a nice step (whole if ``integer``)."""
    step = nice_step(hi - lo, target_ticks)
    if integer:
        step = max(1.0, math.ceil(step))
    start = math.floor(lo / step) * step
    ticks: list[float] = []
    k = 0
    while True:
        value = start + k * step
        ticks.append(round(value, 10))
        if value >= hi - step * 1e-9:
            return ticks
        k += 1


def format_tick(value: float) -> str:
    """Short axis label: 0, 0.25, 12, 2.5k, 1.2M."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:g}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:g}k"
    return f"{value:.6g}"


def percentile_label(x: float) -> str:
    """Label of percentile-axis position ``x = 1 / (1 - q)``: 1 -> 0%, 10 -> 90%, 100 -> 99%."""
    if x <= 1:
        return "0%"
    q = (1 - 1 / x) * 100
    return f"{q:.10f}".rstrip("0").rstrip(".") + "%"


def format_value(value: float, unit: str = "") -> str:
    """A data value for a tooltip: three significant digits at most, plus its unit."""
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return f"{text} {unit}".rstrip()


class _Scale:
    def __init__(self, lo: float, hi: float, out_lo: float, out_hi: float, log: bool) -> None:
        self.log = log
        self.lo = math.log10(lo) if log else lo
        self.hi = math.log10(hi) if log else hi
        if self.hi <= self.lo:
            self.hi = self.lo + 1
        self.out_lo = out_lo
        self.out_hi = out_hi

    def __call__(self, value: float) -> float:
        v = math.log10(max(value, 1e-12)) if self.log else value
        return self.out_lo + (v - self.lo) / (self.hi - self.lo) * (self.out_hi - self.out_lo)


def _points(chart: Chart) -> list[tuple[float, float]]:
    return [(x, y) for s in chart.series for x, y in s.points if y is not None]


def _x_domain(chart: Chart, points: list[tuple[float, float]]) -> tuple[float, float, list[float]]:
    if chart.x.scale == "percentile":
        top = max((x for x, _ in points), default=100.0)
        decades = max(2, math.ceil(math.log10(max(top, 10.0)) - 1e-9))
        return 1.0, 10.0**decades, [10.0**k for k in range(decades + 1)]
    if chart.x_range is not None:
        lo, hi = chart.x_range
    else:
        lo = min((x for x, _ in points), default=0.0)
        hi = max((x for x, _ in points), default=1.0)
    lo = min(lo, 0.0)
    hi = max(hi, lo + 1.0)
    ticks = linear_ticks(lo, hi, 6)
    return ticks[0], ticks[-1], ticks


def drawn_thresholds(chart: Chart, points: list[tuple[float, float]]) -> list[Threshold]:
    """The thresholds close enough to the data to share its axis (all of them without data)."""
    top = max((y for _, y in points), default=0.0)
    if top <= 0:
        return list(chart.thresholds)
    return [t for t in chart.thresholds if t.y <= top * THRESHOLD_REACH]


def _y_domain(chart: Chart, points: list[tuple[float, float]]) -> tuple[float, float, list[float]]:
    values = [y for _, y in points] + [t.y for t in drawn_thresholds(chart, points)]
    hi = max(values, default=0.0)
    lo = min(0.0, *values) if values else 0.0
    if hi <= lo:
        hi = lo + 1.0
    else:
        hi += (hi - lo) * 0.04  # headroom: a line at the very top would hide in the frame
    ticks = linear_ticks(lo, hi, 5, integer=chart.y.integer)
    return ticks[0], ticks[-1], ticks


def _fmt(v: float) -> str:
    return f"{v:.1f}"


def render(chart: Chart, *, width: int = WIDTH, height: int = HEIGHT) -> str:
    """The chart as an ``<svg>`` element (a string), with axes, units, legend and data."""
    points = _points(chart)
    x0, x1, px0, py1 = _LEFT, width - _RIGHT, _TOP, height - _BOTTOM
    del px0
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="mcpswarm-chart" data-chart="{escape(chart.key)}" '
        f'data-points="{len(points)}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(chart.title)}" font-family="Helvetica, Arial, sans-serif">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{_LEFT}" y="18" font-size="14" font-weight="bold" fill="#111">'
        f"{escape(chart.title)}</text>",
    ]
    xlo, xhi, xticks = _x_domain(chart, points)
    ylo, yhi, yticks = _y_domain(chart, points)
    sx = _Scale(xlo, xhi, x0, x1, chart.x.scale == "percentile")
    sy = _Scale(ylo, yhi, py1, _TOP, False)
    # Grid, ticks and axis labels.
    for tick in yticks:
        y = _fmt(sy(tick))
        out.append(f'<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="#e4e4e4" stroke-width="1"/>')
        out.append(
            f'<text x="{x0 - 6}" y="{y}" font-size="11" fill="#444" text-anchor="end" '
            f'dominant-baseline="middle">{format_tick(tick)}</text>'
        )
    for tick in xticks:
        x = _fmt(sx(tick))
        label = percentile_label(tick) if chart.x.scale == "percentile" else format_tick(tick)
        out.append(f'<line x1="{x}" y1="{_TOP}" x2="{x}" y2="{py1}" stroke="#f0f0f0" stroke-width="1"/>')
        out.append(
            f'<text x="{x}" y="{py1 + 16}" font-size="11" fill="#444" text-anchor="middle">{label}</text>'
        )
    out.append(
        f'<polyline points="{x0},{_TOP} {x0},{py1} {x1},{py1}" fill="none" stroke="#666" stroke-width="1"/>'
    )
    out.append(
        f'<text x="{(x0 + x1) / 2:.1f}" y="{height - 8}" font-size="12" fill="#222" '
        f'text-anchor="middle">{escape(chart.x.label)}</text>'
    )
    cy = (py1 + _TOP) / 2
    out.append(
        f'<text x="14" y="{cy:.1f}" font-size="12" fill="#222" text-anchor="middle" '
        f'transform="rotate(-90 14 {cy:.1f})">{escape(chart.y.label)}</text>'
    )
    legend: list[tuple[str, str]] = []
    drawn = drawn_thresholds(chart, points)
    off_scale = [t for t in chart.thresholds if t not in drawn]
    for index, t in enumerate(off_scale):
        out.append(
            f'<text class="threshold-off-scale" x="{x1 - 4}" y="{_TOP + 12 + 13 * index}" font-size="10.5" '
            f'fill="{t.color}" text-anchor="end">▲ {escape(t.label)} (far above the data)</text>'
        )
    for t in drawn:
        ty = sy(t.y)
        out.append(
            f'<line class="threshold" x1="{x0}" y1="{ty:.1f}" x2="{x1}" y2="{ty:.1f}" stroke="{t.color}" '
            f'stroke-width="1.5" stroke-dasharray="6 4"/>'
        )
        out.append(
            f'<text x="{x1 - 4}" y="{ty - 4:.1f}" font-size="10.5" fill="{t.color}" text-anchor="end" '
            f'paint-order="stroke" stroke="#fff" stroke-width="3">{escape(t.label)}</text>'
        )
    for index, series in enumerate(chart.series):
        color = series.color or PALETTE[index % len(PALETTE)]
        legend.append((series.label, color))
        out.extend(_series(series, color, sx, sy, chart.x))
    if not points:
        out.append(
            f'<text class="empty" x="{(x0 + x1) / 2:.1f}" y="{cy:.1f}" font-size="13" fill="#888" '
            f'text-anchor="middle">{escape(chart.empty_note)}</text>'
        )
    if chart.note:
        out.append(
            f'<text class="note" x="{x1 - 6}" y="{_TOP + 16 + 13 * len(off_scale)}" font-size="12" '
            f'fill="#333" text-anchor="end">{escape(chart.note)}</text>'
        )
    out.extend(_legend(legend, width))
    out.append("</svg>")
    return "".join(out)


def _x_text(x: float, axis: Axis) -> str:
    if axis.scale == "percentile":
        return percentile_label(x)
    return f"{x:g} {axis.unit}".rstrip()


def _series(series: Series, color: str, sx: _Scale, sy: _Scale, x_axis: Axis) -> list[str]:
    out: list[str] = []
    run: list[str] = []
    drawn = [(x, y) for x, y in series.points if y is not None]
    label = escape(series.label)

    def flush() -> None:
        if run:
            out.append(
                f'<polyline class="series" data-series="{label}" points="{" ".join(run)}" fill="none" '
                f'stroke="{color}" stroke-width="2" stroke-linejoin="round"/>'
            )
            run.clear()

    for x, y in series.points:
        if y is None:
            flush()
            continue
        run.append(f"{sx(x):.1f},{sy(y):.1f}")
    flush()
    if len(drawn) <= MAX_MARKERS:
        for x, y in drawn:
            tip = escape(f"{series.label}: {format_value(y, series.unit)} at {_x_text(x, x_axis)}")
            out.append(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.6" fill="{color}">'
                f"<title>{tip}</title></circle>"
            )
    return out


def _legend(entries: list[tuple[str, str]], width: int) -> list[str]:
    """Legend of the series on the second line of the header (thresholds are labelled in place)."""
    out: list[str] = []
    x = float(_LEFT)
    y = 34
    for label, color in entries:
        out.append(
            f'<line x1="{x:.0f}" y1="{y}" x2="{x + 18:.0f}" y2="{y}" stroke="{color}" stroke-width="2.5"/>'
        )
        out.append(
            f'<text x="{x + 22:.0f}" y="{y}" font-size="11" fill="#222" dominant-baseline="middle">'
            f"{escape(label)}</text>"
        )
        x += 22 + 6.4 * len(label) + 14
        if x > width - 40:
            break
    return out
