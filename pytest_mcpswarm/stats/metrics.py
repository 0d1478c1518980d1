"""The metric table: every name an SLA, a report or a baseline comparison may use.

One table so that ``sla``, ``compare`` and the reports agree on what ``p99``
or ``error_rate`` means.  A metric is computed from an ``Aggregate``: the
latency histogram plus the outcome counters of a span of time (the whole run,
or one sliding window).

Definitions:

- latency metrics are in integer microseconds, over *successful* requests,
  measured from the request's scheduled send time;
- ``error_rate`` = errors / (ok + errors + timeouts) and ``timeout_rate`` =
  timeouts / (ok + errors + timeouts): fractions of the requests that were
  actually sent (``not_sent`` has its own metric);
- ``rps`` = (ok + errors) / seconds: requests that got an answer, per second
  (as wrk2 and locust count them; ``error_rate`` tells the two apart).

A value is ``None`` when it is undefined (a percentile of no samples, a rate
with nothing sent); an SLA check on an undefined value fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, Protocol

from pytest_mcpswarm.stats.histogram import LatencyHistogram

MetricKind = Literal["latency", "rate", "count"]


class Aggregate(Protocol):
    """What a metric is computed from: a span of the run."""

    @property
    def latency(self) -> LatencyHistogram: ...
    @property
    def ok(self) -> int: ...
    @property
    def errors(self) -> int: ...
    @property
    def timeouts(self) -> int: ...
    @property
    def not_sent(self) -> int: ...
    @property
    def seconds(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    kind: MetricKind
    #: For baselines: does a bigger value mean better (rps) or worse (p99)?
    higher_is_better: bool
    description: str
    #: The percentile a latency metric reads (None for mean and max).
    percentile: float | None = None

    def value(self, agg: Aggregate) -> float | None:
        """This metric of ``agg``, in base units (us, fraction, count); None if undefined."""
        if self.kind == "latency":
            hist = agg.latency
            if not hist.total_count:
                return None
            if self.percentile is not None:
                return float(hist.percentile(self.percentile))
            if self.name == "max":
                return float(hist.max_us or 0)
            return hist.mean()
        sent = agg.ok + agg.errors + agg.timeouts
        if self.name == "error_rate":
            return agg.errors / sent if sent else None
        if self.name == "timeout_rate":
            return agg.timeouts / sent if sent else None
        if self.name == "rps":
            return (agg.ok + agg.errors) / agg.seconds if agg.seconds > 0 else None
        count: int = getattr(agg, self.name)
        return float(count)


def _latency(name: str, percentile: float | None, text: str) -> Metric:
    return Metric(name, "latency", False, text, percentile)


METRICS: Mapping[str, Metric] = MappingProxyType(
    {
        m.name: m
        for m in (
            _latency("p50", 50.0, "median latency"),
            _latency("p90", 90.0, "90th percentile latency"),
            _latency("p95", 95.0, "95th percentile latency"),
            _latency("p99", 99.0, "99th percentile latency"),
            _latency("p999", 99.9, "99.9th percentile latency"),
            _latency("max", None, "largest latency (exact)"),
            _latency("mean", None, "mean latency (HdrHistogram bucket medians)"),
            Metric("error_rate", "rate", False, "errors / (ok + errors + timeouts)"),
            Metric("timeout_rate", "rate", False, "timeouts / (ok + errors + timeouts)"),
            Metric("rps", "count", True, "answered requests (ok + errors) per second"),
            Metric("not_sent", "count", False, "requests scheduled but never sent"),
            Metric("errors", "count", False, "requests answered with an error or failed"),
            Metric("timeouts", "count", False, "requests that got no answer in time"),
        )
    }
)
