"""One step's figures from its steady state: the per-second windows after the warm-up.

A step runs ``warmup_s + hold_s`` seconds.  Its first ``warmup_s`` windows
(connections opening, caches filling, a queue reaching its level) are left
out, and so are windows after the hold (answers drained after the schedule
ended).  What is left is re-indexed from 0, so the SLA language applies to
it unchanged: ``SteadyView`` is an ``sla.ResultView``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_mcpswarm.stats.metrics import METRICS
from pytest_mcpswarm.stats.window import Span, TimeSeries


def steady_series(series: TimeSeries, start_s: int, stop_s: int) -> TimeSeries:
    """Windows ``[start_s, stop_s)`` of ``series``, re-indexed from 0 (copies; ``series`` is untouched)."""
    if not 0 <= start_s < stop_s:
        raise ValueError(f"steady span must satisfy 0 <= start < stop, got {start_s}..{stop_s}")
    out = TimeSeries(float(stop_s - start_s))
    for index, win in series.windows.items():
        if start_s <= index < stop_s:
            out.window(index - start_s).add(win)
    return out


@dataclass(frozen=True)
class SteadyView:
    """The steady windows of a step, as an SLA ``ResultView``."""

    series: TimeSeries

    def span(self) -> Span:
        return next(self.series.sliding(max(1, self.series.length)))

    def overall(self, metric: str) -> float | None:
        return METRICS[metric].value(self.span())

    def windows(self, metric: str, width_s: int) -> Sequence[tuple[int, float | None]]:
        return self.series.sliding_values(metric, width_s)
