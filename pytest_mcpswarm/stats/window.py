"""Per-second windows: one histogram and a few counters per second of the run.

Window ``i`` covers ``[i, i + 1)`` seconds after the run start that the
controller hands every worker, so windows from different workers line up and
merge by index.  Everything is a sum, which is what makes merging exact no
matter how the data is split (across workers, or into deltas over time).
That is also why connections are counted as ``connects``/``disconnects``
events, not as a gauge: the number open at the end of window ``i`` is the
running sum of the two up to ``i``, and a running sum survives merging.

Sliding windows (``p99[10s]`` in an SLA) merge ``width`` consecutive
one-second histograms; nothing is ever averaged.

Memory: only the newest window of a series keeps a full histogram (~190 KiB);
creating a newer one seals the one before (``LatencyHistogram.seal``: the
encoded blob, about 1 KiB for a second of loopback traffic), and a window
created behind the newest is sealed from the start.  The engine records only
into the newest window, so in a run nothing is ever unsealed again; anything
else may still write into any window (it reopens that one histogram) and
every read and merge stays exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pytest_mcpswarm.stats.histogram import LatencyHistogram
from pytest_mcpswarm.stats.metrics import METRICS

_COUNTERS = ("ok", "errors", "timeouts", "not_sent", "connects", "disconnects")


@dataclass(slots=True, eq=True)
class Window:
    """One second of the run.  Workers bump the fields directly on the hot path."""

    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    ok: int = 0
    errors: int = 0
    timeouts: int = 0
    not_sent: int = 0
    connects: int = 0
    disconnects: int = 0

    def add(self, other: Window) -> None:
        self.latency.add(other.latency)
        for name in _COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name) for name in _COUNTERS}
        out["latency"] = self.latency.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Window:
        return cls(LatencyHistogram.from_dict(data["latency"]), *(int(data[name]) for name in _COUNTERS))


@dataclass(slots=True)
class Span:
    """Several consecutive windows merged: ``[start, start + width)`` seconds.

    ``seconds`` is the time the span really covers (the run may end inside
    it), the divisor of ``rps``.  Satisfies ``metrics.Aggregate``.
    """

    start: int
    width: int
    seconds: float
    latency: LatencyHistogram
    ok: int
    errors: int
    timeouts: int
    not_sent: int


_EMPTY = Window()  # never mutated: stands in for seconds with no data


class TimeSeries:
    """Windows keyed by second index, plus how long the run has lasted."""

    __slots__ = ("_newest", "elapsed_s", "windows")

    def __init__(self, elapsed_s: float = 0.0) -> None:
        self.windows: dict[int, Window] = {}
        #: Seconds since run start that this series covers; merges by max.
        self.elapsed_s = elapsed_s
        self._newest = -1  # index of the one window created unsealed

    def window(self, index: int) -> Window:
        """The window for second ``index``, created on first use (sealing the previous newest)."""
        try:
            return self.windows[index]
        except KeyError:
            if index < 0:
                raise ValueError(f"window index must be >= 0, got {index}") from None
            win = self.windows[index] = Window()
            if index > self._newest:
                previous = self.windows.get(self._newest)
                if previous is not None:
                    previous.latency.seal()
                self._newest = index
            else:
                win.latency.seal()
            return win

    def window_at(self, t_s: float) -> Window:
        """The window containing ``t_s`` seconds after run start."""
        return self.window(int(t_s // 1))

    def mark_elapsed(self, t_s: float) -> None:
        self.elapsed_s = max(self.elapsed_s, t_s)

    def merge(self, other: TimeSeries) -> None:
        """Add ``other`` into this series (locust's ``extend``); exact."""
        for index in sorted(other.windows):  # oldest first: each new window seals the one before
            self.window(index).add(other.windows[index])
        self.elapsed_s = max(self.elapsed_s, other.elapsed_s)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TimeSeries):
            return NotImplemented
        return self.elapsed_s == other.elapsed_s and self.windows == other.windows

    __hash__ = None  # type: ignore[assignment]  # mutable

    # -- reading ---------------------------------------------------------------

    @property
    def length(self) -> int:
        """Number of one-second windows from 0 to the last one with data or elapsed time."""
        last = max(self.windows, default=-1) + 1
        return max(last, int(np.ceil(self.elapsed_s)))

    def seconds_covered(self, index: int) -> float:
        """How much of window ``index`` the run covered: 1.0 except a final partial second."""
        if self.elapsed_s > index:
            return min(1.0, self.elapsed_s - index)
        # Past the recorded end (e.g. late answers during drain): a full second.
        return 1.0

    def _get(self, index: int) -> Window:
        # Read-only use: a gap reads as the shared empty window.
        return self.windows.get(index, _EMPTY)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per second, gaps filled, for charts and the JSON report.

        Keys: ``t`` (s), ``rps``, ``p50_ms``/``p95_ms``/``p99_ms`` (None with no
        samples), ``errors``, ``timeouts``, ``not_sent``, ``connections`` (open at
        the end of the second).
        """
        rows: list[dict[str, Any]] = []
        open_connections = 0
        for index in range(self.length):
            win = self._get(index)
            open_connections += win.connects - win.disconnects
            p50, p95, p99 = win.latency.percentiles([50, 95, 99])
            has = bool(win.latency.total_count)
            rows.append(
                {
                    "t": index,
                    "rps": (win.ok + win.errors) / self.seconds_covered(index),
                    "p50_ms": p50 / 1000 if has else None,
                    "p95_ms": p95 / 1000 if has else None,
                    "p99_ms": p99 / 1000 if has else None,
                    "errors": win.errors,
                    "timeouts": win.timeouts,
                    "not_sent": win.not_sent,
                    "connections": open_connections,
                }
            )
        return rows

    def sliding(self, width: int, step: int = 1) -> Iterator[Span]:
        """Every ``width``-second span, starting at 0 and moving by ``step`` seconds.

        A run shorter than ``width`` yields one span over all of it, so a
        ``p99[60s]`` check on a 30 s run still checks something.
        """
        if width < 1 or step < 1:
            raise ValueError(f"width and step must be >= 1, got {width}, {step}")
        n = self.length
        if n == 0:
            return
        width = min(width, n)
        # Running sum of counts: add the entering second, drop the leaving one.
        acc = np.zeros_like(_EMPTY.latency.counts)
        left = 0  # acc holds windows [left, right)
        right = 0
        for start in range(0, n - width + 1, step):
            while right < start + width:
                acc += self._get(right).latency.counts
                right += 1
            while left < start:
                acc -= self._get(left).latency.counts
                left += 1
            wins = [self._get(i) for i in range(start, start + width)]
            mins = [w.latency.min_us for w in wins if w.latency.min_us is not None]
            maxs = [w.latency.max_us for w in wins if w.latency.max_us is not None]
            yield Span(
                start=start,
                width=width,
                seconds=sum(self.seconds_covered(i) for i in range(start, start + width)),
                latency=LatencyHistogram.from_counts(
                    acc.copy(), min_us=min(mins, default=None), max_us=max(maxs, default=None)
                ),
                ok=sum(w.ok for w in wins),
                errors=sum(w.errors for w in wins),
                timeouts=sum(w.timeouts for w in wins),
                not_sent=sum(w.not_sent for w in wins),
            )

    def sliding_values(self, metric: str, width: int, step: int = 1) -> list[tuple[int, float | None]]:
        """``(start_s, value)`` of ``metric`` (a ``METRICS`` name) over every sliding span."""
        spec = METRICS[metric]
        return [(span.start, spec.value(span)) for span in self.sliding(width, step)]

    # -- wire format -----------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        # A list, not a dict keyed by index: JSON object keys must be strings.
        return {
            "elapsed_s": self.elapsed_s,
            "windows": [[index, self.windows[index].to_dict()] for index in sorted(self.windows)],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TimeSeries:
        series = cls(float(data["elapsed_s"]))
        for index, win in data["windows"]:
            series.window(int(index)).add(Window.from_dict(win))
        return series
