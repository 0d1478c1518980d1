"""StatsSnapshot: everything a worker measured, recordable, serialisable and mergeable.

A worker records into one snapshot, periodically ``take()``s it (a delta) and
sends ``to_dict()`` (orjson-able, histograms as base64 HdrHistogram V2 with
exact min/max).  The controller ``merge``s whatever arrives, in any order and
split in any way; the result equals a snapshot that recorded every event
itself, because every field is a sum (or, for elapsed time, a max).

The snapshot also answers the questions an SLA asks (``overall``,
``windows``), which is the ``sla.ResultView`` protocol.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from pytest_mcpswarm.stats.histogram import LatencyHistogram
from pytest_mcpswarm.stats.metrics import METRICS
from pytest_mcpswarm.stats.outcomes import MethodStats, Outcomes
from pytest_mcpswarm.stats.window import TimeSeries

FORMAT: Final = 1


@dataclass(slots=True)
class Overall:
    """The whole run as one ``metrics.Aggregate``."""

    latency: LatencyHistogram
    ok: int
    errors: int
    timeouts: int
    not_sent: int
    seconds: float


class StatsSnapshot:
    """Per-method outcomes and latency plus the per-second time series."""

    __slots__ = ("methods", "series")

    def __init__(self) -> None:
        self.methods: dict[str, MethodStats] = {}
        self.series = TimeSeries()

    # -- recording (convenience; a hot loop may hold ``method()``/``series.window()``) --

    def method(self, name: str) -> MethodStats:
        try:
            return self.methods[name]
        except KeyError:
            stats = self.methods[name] = MethodStats()
            return stats

    def record_scheduled(self, method: str, n: int = 1) -> None:
        self.method(method).outcomes.scheduled += n

    def record_sent(self, method: str) -> None:
        self.method(method).outcomes.sent += 1

    def record_ok(self, method: str, t_s: float, latency_us: int) -> None:
        """An answer with a result at ``t_s`` (s since run start), ``latency_us`` after its scheduled time."""
        stats = self.method(method)
        stats.outcomes.ok += 1
        stats.latency.record(latency_us)
        win = self.series.window_at(t_s)
        win.ok += 1
        win.latency.record(latency_us)

    def record_error(self, method: str, t_s: float, key: str) -> None:
        self.method(method).outcomes.add_error(key)
        self.series.window_at(t_s).errors += 1

    def record_timeout(self, method: str, t_s: float) -> None:
        self.method(method).outcomes.timeouts += 1
        self.series.window_at(t_s).timeouts += 1

    def record_not_sent(self, method: str, t_s: float, reason: str, n: int = 1) -> None:
        self.method(method).outcomes.add_not_sent(reason, n)
        self.series.window_at(t_s).not_sent += n

    def record_connect(self, t_s: float) -> None:
        self.series.window_at(t_s).connects += 1

    def record_disconnect(self, t_s: float) -> None:
        self.series.window_at(t_s).disconnects += 1

    def mark_elapsed(self, t_s: float) -> None:
        """The run has lasted ``t_s`` seconds (the divisor of ``rps``)."""
        self.series.mark_elapsed(t_s)

    # -- merging -----------------------------------------------------------------

    def merge(self, other: StatsSnapshot) -> None:
        for name, stats in other.methods.items():
            self.method(name).add(stats)
        self.series.merge(other.series)

    @classmethod
    def merged(cls, snapshots: Iterable[StatsSnapshot]) -> StatsSnapshot:
        out = cls()
        for snap in snapshots:
            out.merge(snap)
        return out

    def take(self) -> StatsSnapshot:
        """Hand over everything recorded so far (a delta) and start afresh; elapsed time stays."""
        delta = StatsSnapshot()
        delta.methods, self.methods = self.methods, {}
        delta.series, self.series = self.series, TimeSeries(self.series.elapsed_s)
        return delta

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StatsSnapshot):
            return NotImplemented
        return self.methods == other.methods and self.series == other.series

    __hash__ = None  # type: ignore[assignment]  # mutable

    # -- totals and the ResultView protocol -----------------------------------

    @property
    def outcomes(self) -> Outcomes:
        """All methods' counters summed."""
        return Outcomes.total(stats.outcomes for stats in self.methods.values())

    @property
    def latency(self) -> LatencyHistogram:
        """All methods' latencies in one histogram."""
        return LatencyHistogram.merged(stats.latency for stats in self.methods.values())

    def accounting_ok(self) -> bool:
        return all(s.outcomes.accounting_ok() for s in self.methods.values())

    def overall_aggregate(self) -> Overall:
        total = self.outcomes
        return Overall(
            self.latency, total.ok, total.errors, total.timeouts, total.not_sent, self.series.elapsed_s
        )

    def overall(self, metric: str) -> float | None:
        """``metric`` (a ``METRICS`` name) over the whole run, in base units."""
        return METRICS[metric].value(self.overall_aggregate())

    def windows(self, metric: str, width_s: int) -> list[tuple[int, float | None]]:
        """``(start_s, value)`` of ``metric`` for every ``width_s``-second window, stepped by 1 s."""
        return self.series.sliding_values(metric, width_s)

    # -- wire format ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "methods": {name: stats.to_dict() for name, stats in sorted(self.methods.items())},
            "series": self.series.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StatsSnapshot:
        """Inverse of ``to_dict``; ValueError for anything else."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"not a stats snapshot of format {FORMAT} (format: {got!r})")
        snap = cls()
        try:
            for name, stats in data["methods"].items():
                snap.methods[str(name)] = MethodStats.from_dict(stats)
            snap.series = TimeSeries.from_dict(data["series"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed stats snapshot: {exc!r}") from exc
        return snap
