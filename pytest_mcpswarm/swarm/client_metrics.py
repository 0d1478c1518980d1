"""Prometheus metrics of one load-generator container, fed from the engine's one-second windows.

Metric names follow the erlmcp rig's dashboards in base units (``_seconds``):

- ``mcp_client_request_duration_seconds`` (histogram, from the scheduled send time);
- ``mcp_client_messages_sent_total`` (answered, failed or timed out);
- ``mcp_client_messages_errors_total{error_type}`` (``jsonrpc:-32601``, ``transport:closed``,
  ``timeout``...);
- ``mcp_client_requests_total{outcome}`` (``ok``, ``error``, ``timeout``, ``not_sent``);
- ``mcp_client_connections_active``.

Histogram buckets are filled from the HdrHistogram counts of each window: every HDR slot
goes to the first bucket whose bound is at or above the slot's highest value, so a bucket
never holds a value above its ``le``.  Updates come from the event loop's thread, scrapes
from the HTTP server's: one lock guards both.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from pytest_mcpswarm.stats.histogram import layout
from pytest_mcpswarm.stats.window import Window

#: Upper bounds in seconds, the same as the reference server's.
BUCKETS: Final = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.0075,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
#: Error types every container exports from the start, so error-rate queries have a series.
BASE_ERROR_TYPES: Final = ("timeout",)


def _slot_buckets() -> npt.NDArray[np.int64]:
    bounds_us = np.array([round(b * 1e6) for b in BUCKETS], dtype=np.int64)
    found: npt.NDArray[np.int64] = np.searchsorted(bounds_us, layout().highest, side="left").astype(np.int64)
    return found


class ClientMetrics(Collector):
    """Cumulative counters of every window recorded so far (across successive runs)."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = dict(labels)
        self._lock = threading.Lock()
        self._slot_bucket = _slot_buckets()
        self._median_us = layout().median.astype(np.float64)
        self.bucket_counts = np.zeros(len(BUCKETS) + 1, dtype=np.int64)
        self.latency_sum_s = 0.0
        self.outcomes: dict[str, int] = {"ok": 0, "error": 0, "timeout": 0, "not_sent": 0}
        self.errors: dict[str, int] = dict.fromkeys(BASE_ERROR_TYPES, 0)
        self.active = 0

    def add_window(self, window: Window, errors_by_type: dict[str, int], active: int) -> None:
        """Account one finished second; ``errors_by_type`` are the *new* errors in it."""
        counts = window.latency.counts
        per_bucket = np.bincount(self._slot_bucket, weights=counts, minlength=len(BUCKETS) + 1)
        latency_sum = float(np.dot(counts, self._median_us)) / 1e6
        with self._lock:
            self.bucket_counts += per_bucket.astype(np.int64)
            self.latency_sum_s += latency_sum
            self.outcomes["ok"] += window.ok
            self.outcomes["error"] += window.errors
            self.outcomes["timeout"] += window.timeouts
            self.outcomes["not_sent"] += window.not_sent
            for key, n in errors_by_type.items():
                self.errors[key] = self.errors.get(key, 0) + n
            self.errors["timeout"] += window.timeouts
            self.active = active

    def set_active(self, active: int) -> None:
        with self._lock:
            self.active = active

    def collect(self) -> Iterator[Any]:
        names, values = list(self.labels), list(self.labels.values())
        with self._lock:
            cumulative = np.cumsum(self.bucket_counts)
            hist = HistogramMetricFamily(
                "mcp_client_request_duration_seconds",
                "Request latency from the scheduled send time to the reply.",
                labels=names,
            )
            buckets = [(repr(b), int(c)) for b, c in zip(BUCKETS, cumulative[:-1], strict=True)]
            buckets.append(("+Inf", int(cumulative[-1])))
            hist.add_metric(values, buckets, self.latency_sum_s)
            sent = CounterMetricFamily(
                "mcp_client_messages_sent", "Requests answered, failed or timed out.", labels=names
            )
            sent.add_metric(values, self.outcomes["ok"] + self.outcomes["error"] + self.outcomes["timeout"])
            errors = CounterMetricFamily(
                "mcp_client_messages_errors", "Failed requests by error type.", labels=[*names, "error_type"]
            )
            for key, n in sorted(self.errors.items()):
                errors.add_metric([*values, key], n)
            outcomes = CounterMetricFamily(
                "mcp_client_requests", "Scheduled requests by outcome.", labels=[*names, "outcome"]
            )
            for key, n in self.outcomes.items():
                outcomes.add_metric([*values, key], n)
            active = GaugeMetricFamily(
                "mcp_client_connections_active", "Open connections to the MCP server.", labels=names
            )
            active.add_metric(values, self.active)
        yield from (hist, sent, errors, outcomes, active)


def registry_for(metrics: ClientMetrics) -> CollectorRegistry:
    """Our metrics plus the process and platform collectors (CPU, memory, fds)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
