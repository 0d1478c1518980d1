"""Statistics of a part of a run (a phase, or the run after its warm-up), from the 1 s windows.

A phase ``[start_s, stop_s)`` is the one-second windows that lie wholly
inside it (``ceil(start) <= i`` and ``i + 1 <= stop``); a phase shorter than
that gets the windows it overlaps.  Their histograms are merged, so every
percentile still comes from one merged histogram.  The last phase
(``stop_s=None``) also takes the windows after the run's end, where late
answers land: leaving them out would hide the slowest requests.

``PhaseView`` answers an SLA about the phase (``sla.ResultView``).  How long
a system takes to get back to normal after a stress phase is
``stats.recovery.recovery_time``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_mcpswarm.stats.histogram import LatencyHistogram
from pytest_mcpswarm.stats.metrics import METRICS
from pytest_mcpswarm.stats.window import TimeSeries


@dataclass(slots=True)
class PhaseStats:
    """The merged windows of a phase; satisfies ``metrics.Aggregate``."""

    first: int
    stop: int  # exclusive window index
    seconds: float
    latency: LatencyHistogram
    ok: int
    errors: int
    timeouts: int
    not_sent: int

    def value(self, metric: str) -> float | None:
        return METRICS[metric].value(self)


def window_range(series: TimeSeries, start_s: float, stop_s: float | None) -> tuple[int, int]:
    """Indices ``[first, stop)`` of the windows that make up the phase."""
    end = series.length
    first = math.ceil(start_s - 1e-9)
    last = end if stop_s is None else math.floor(stop_s + 1e-9)
    if last <= first:  # shorter than a whole window: take what it overlaps
        first = math.floor(start_s)
        last = end if stop_s is None else math.ceil(stop_s - 1e-9)
    first = max(0, min(first, end))
    return first, max(first, min(last, end))


def phase_stats(series: TimeSeries, start_s: float, stop_s: float | None = None) -> PhaseStats:
    """Merged statistics of ``[start_s, stop_s)`` (``None``: to the end, late answers included)."""
    first, stop = window_range(series, start_s, stop_s)
    wins = [series.windows[i] for i in range(first, stop) if i in series.windows]
    if stop_s is None:
        # rps divides by the time the run was sending in the phase, not the drain after it.
        seconds = max(0.0, series.elapsed_s - first)
    else:
        seconds = sum(series.seconds_covered(i) for i in range(first, stop))
    return PhaseStats(
        first=first,
        stop=stop,
        seconds=seconds,
        latency=LatencyHistogram.merged(w.latency for w in wins),
        ok=sum(w.ok for w in wins),
        errors=sum(w.errors for w in wins),
        timeouts=sum(w.timeouts for w in wins),
        not_sent=sum(w.not_sent for w in wins),
    )


class PhaseView:
    """``sla.ResultView`` over one phase of a run (e.g. everything after the warm-up)."""

    def __init__(self, series: TimeSeries, start_s: float = 0.0, stop_s: float | None = None) -> None:
        self.stats = phase_stats(series, start_s, stop_s)
        self._sub = TimeSeries(
            elapsed_s=max(0.0, min(series.elapsed_s, self.stats.stop) - self.stats.first)
            if stop_s is not None
            else max(0.0, series.elapsed_s - self.stats.first)
        )
        for index in range(self.stats.first, self.stats.stop):
            if index in series.windows:
                self._sub.window(index - self.stats.first).add(series.windows[index])

    def overall(self, metric: str) -> float | None:
        return self.stats.value(metric)

    def windows(self, metric: str, width_s: int) -> Sequence[tuple[int, float | None]]:
        shift = self.stats.first
        return [(start + shift, value) for start, value in self._sub.sliding_values(metric, width_s)]
