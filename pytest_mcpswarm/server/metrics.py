"""Server-side counters, kept as plain ints and rendered for Prometheus only when scraped.

prometheus_client's own Histogram takes a lock and walks objects on every
``observe``; at 100K req/s that is a visible share of a core.  Here a request
costs a ``bisect`` and two list increments, and a custom collector turns the
numbers into metric families at scrape time.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any, Final

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

#: Upper bounds in seconds: sub-millisecond resolution where a local server lives, up to 10 s.
BUCKETS: Final = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.0075,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class _Hist:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # last slot is +Inf
        self.total = 0.0


class ServerStats:
    """Everything /metrics and /stats report for one worker process."""

    def __init__(
        self,
        replica: str,
        worker: int,
        fault_counts: dict[str, int],
        fault_seconds: dict[str, float] | None = None,
        fault_clock_unix: float = 0.0,
    ) -> None:
        self.replica = replica
        self.worker = worker
        self.started = time.time()
        self.requests: dict[tuple[str, str], int] = {}
        self.hists: dict[str, _Hist] = {}
        self.connections: dict[str, int] = {"http": 0, "ws": 0}
        self.faults = fault_counts  # shared with the injector: one source of truth
        self.fault_seconds = fault_seconds if fault_seconds is not None else {}
        #: Wall-clock time fault windows (``@START-END``) are measured from.
        self.fault_clock_unix = fault_clock_unix
        self.sessions: Callable[[], int] = lambda: 0

    def observe(self, method: str, outcome: str, seconds: float) -> None:
        key = (method, outcome)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        hist = self.hists.get(method)
        if hist is None:
            hist = self.hists[method] = _Hist()
        hist.counts[bisect_left(BUCKETS, seconds)] += 1
        hist.total += seconds

    def snapshot(self) -> dict[str, Any]:
        """The /stats document: plain JSON, stable keys."""
        requests: dict[str, dict[str, int]] = {}
        for (method, outcome), n in sorted(self.requests.items()):
            requests.setdefault(method, {})[outcome] = n
        return {
            "replica": self.replica,
            "worker": self.worker,
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started, 3),
            "faults": dict(self.faults),
            "fault_seconds": {k: round(v, 6) for k, v in self.fault_seconds.items()},
            "fault_clock_unix": self.fault_clock_unix,
            "requests": requests,
            "requests_total": sum(self.requests.values()),
            "active_connections": dict(self.connections),
            "active_sessions": self.sessions(),
        }


class _StatsCollector(Collector):
    def __init__(self, stats: ServerStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Any]:
        s = self._stats
        hist = HistogramMetricFamily(
            "mcpswarm_server_request_duration_seconds",
            "Time from a request being parsed to its reply being handed to the transport.",
            labels=["method"],
        )
        for method, h in sorted(s.hists.items()):
            cumulative, buckets = 0, []
            for bound, n in zip((*BUCKETS, float("inf")), h.counts, strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            hist.add_metric([method], buckets, h.total)
        yield hist
        reqs = CounterMetricFamily(
            "mcpswarm_server_requests", "JSON-RPC requests answered, by method and outcome.",
            labels=["method", "outcome"],
        )  # fmt: skip
        for (method, outcome), n in sorted(s.requests.items()):
            reqs.add_metric([method, outcome], n)
        yield reqs
        conns = GaugeMetricFamily(
            "mcpswarm_server_active_connections", "Open client connections.", labels=["transport"]
        )
        for transport, n in sorted(s.connections.items()):
            conns.add_metric([transport], n)
        yield conns
        yield GaugeMetricFamily(
            "mcpswarm_server_active_sessions", "Live Streamable HTTP sessions.", value=s.sessions()
        )
        faults = CounterMetricFamily(
            "mcpswarm_server_faults_injected", "Faults injected by --fault, by kind.", labels=["kind"]
        )
        for kind, n in sorted(s.faults.items()):
            faults.add_metric([kind], n)
        yield faults
        fault_time = CounterMetricFamily(
            "mcpswarm_server_fault_seconds",
            "Time spent in time-shaped faults (stall: replies held; slowread: reads paused), by kind.",
            labels=["kind"],
        )
        for kind, seconds in sorted(s.fault_seconds.items()):
            fault_time.add_metric([kind], seconds)
        yield fault_time


class MetricsExporter:
    """Renders one worker's stats in the Prometheus text format on demand."""

    CONTENT_TYPE: Final = b"text/plain; version=0.0.4; charset=utf-8"

    def __init__(self, stats: ServerStats) -> None:
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_StatsCollector(stats))
        # process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds: what
        # bottleneck attribution and the CPU/memory alerts read.
        ProcessCollector(registry=self._registry)

    def render(self) -> bytes:
        return generate_latest(self._registry)
