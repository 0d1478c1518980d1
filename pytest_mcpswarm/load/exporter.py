"""Prometheus metrics of the load generator itself, one endpoint per worker process.

Worker ``i`` of ``mcpswarm run --metrics-port N`` serves ``http://HOST:(N+i)/metrics``
(HOST: ``--metrics-host``, default 127.0.0.1).  One endpoint per process and
no aggregation in the controller: Prometheus sums the workers
(``sum(rate(mcp_client_requests_total[1m]))``), which is exact for counters
and for histogram buckets, and a worker never waits on another.

Nothing here runs per request.  The engine calls ``observe`` and ``publish``
from its once-a-second ``fold`` (a ``FoldObserver``); ``publish`` swaps in an
immutable copy of the figures, and ``collect``, which runs in
prometheus_client's server thread on each scrape, only reads the latest copy.
This is prometheus_client's documented custom-collector pattern, so no
``Counter.inc`` or ``Histogram.observe`` (a lock each) ever sits on the hot path.

Metrics:

- ``mcp_client_request_duration_seconds{method}``: histogram of successful
  requests, from the intended send time, with sub-millisecond buckets;
- ``mcp_client_requests_total{method,outcome}``: outcome is ok, error,
  timeout or not_sent; counted when the request ends (not_sent: when it was due);
- ``mcp_client_connections_active``: connections with a finished handshake;
- ``mcp_client_reconnects_total``: reopenings after a lost connection
  (planned churn reopenings are not counted);
- ``mcp_client_messages_sent_total`` / ``mcp_client_bytes_sent_total``:
  JSON-RPC messages written (handshake included) and their bytes, without
  WebSocket framing or HTTP headers;
- ``mcp_client_messages_errors_total{error_type}``: failed requests by error type
  (``transport:closed``, ``jsonrpc:-32601``...), timeouts as ``timeout`` (always present).

One ``GeneratorMetrics`` may observe successive engines (the swarm client container runs
until stopped, one engine per chunk): counters then carry on from the previous engine's
last figures instead of falling back to zero.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from wsgiref.simple_server import WSGIServer

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from pytest_mcpswarm.errors import PortInUseError

if TYPE_CHECKING:
    from pytest_mcpswarm.load.engine import Engine

#: Upper bounds in seconds; the first five are below one millisecond.
BUCKETS_S: Final = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
_BOUNDS_US: Final = np.array([round(b * 1e6) for b in BUCKETS_S], dtype=np.int64)
OUTCOMES: Final = ("ok", "error", "timeout", "not_sent")


@dataclass(frozen=True)
class _Figures:
    """One published state; never mutated after ``publish`` builds it."""

    requests: dict[tuple[str, str], int] = field(default_factory=dict)
    #: method -> (cumulative bucket counts incl. +Inf, sum of seconds)
    durations: dict[str, tuple[list[int], float]] = field(default_factory=dict)
    active: int = 0
    reconnects: int = 0
    messages: int = 0
    bytes: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def _added(a: dict[Any, int], b: dict[Any, int]) -> dict[Any, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in a.keys() | b.keys()}


class GeneratorMetrics:
    """A ``FoldObserver`` and a prometheus_client collector over the same figures."""

    def __init__(self) -> None:
        self._counts: dict[str, npt.NDArray[np.int64]] = {}
        self._sums_us: dict[str, int] = {}
        self._figures = _Figures()
        #: Counters of the engines observed before the current one.
        self._base = _Figures()
        #: The engine last published (held, so a new one is never mistaken for it).
        self._engine: Engine | None = None

    # -- FoldObserver (the engine's thread, once a second) -------------------------------

    def observe(self, method: str, latencies_us: npt.NDArray[np.int64]) -> None:
        counts = self._counts.get(method)
        if counts is None:
            counts = self._counts[method] = np.zeros(len(_BOUNDS_US) + 1, dtype=np.int64)
        # Bucket i holds values <= bound i (Prometheus' ``le``); the last one is +Inf.
        index = np.searchsorted(_BOUNDS_US, latencies_us, side="left")
        counts += np.bincount(index, minlength=len(counts))
        self._sums_us[method] = self._sums_us.get(method, 0) + int(latencies_us.sum())

    def publish(self, engine: Engine) -> None:
        if self._engine is not None and self._engine is not engine:
            self._base = self._figures  # a new engine: carry the last one's totals on
        self._engine = engine
        base = self._base
        requests: dict[tuple[str, str], int] = {}
        for method, stats in engine.snapshot.methods.items():
            o = stats.outcomes
            for outcome, value in zip(OUTCOMES, (o.ok, o.errors, o.timeouts, o.not_sent), strict=True):
                requests[(method, outcome)] = value
        durations = {
            method: (np.cumsum(counts).tolist(), self._sums_us.get(method, 0) / 1e6)
            for method, counts in self._counts.items()
        }
        total = engine.snapshot.outcomes
        errors = {"timeout": total.timeouts, **total.errors_by_type}
        self._figures = _Figures(
            _added(base.requests, requests), durations, engine.active, base.reconnects + engine.reconnects,
            base.messages + engine.messages_sent, base.bytes + engine.bytes_sent, _added(base.errors, errors),
        )  # fmt: skip

    # -- Collector (prometheus_client's server thread, per scrape) ------------------------

    def collect(self) -> Iterator[Metric]:
        f = self._figures
        duration = HistogramMetricFamily(
            "mcp_client_request_duration_seconds",
            "Latency of successful MCP requests from their intended send time",
            labels=["method"],
        )
        for method, (cumulative, total_s) in sorted(f.durations.items()):
            buckets = [(_le(b), float(c)) for b, c in zip(BUCKETS_S, cumulative, strict=False)]
            buckets.append(("+Inf", float(cumulative[-1])))
            duration.add_metric([method], buckets, total_s)
        yield duration
        requests = CounterMetricFamily(
            "mcp_client_requests_total", "MCP requests by method and outcome", labels=["method", "outcome"]
        )
        for (method, outcome), value in sorted(f.requests.items()):
            requests.add_metric([method, outcome], value)
        yield requests
        yield GaugeMetricFamily(
            "mcp_client_connections_active", "Connections with a finished MCP handshake", value=f.active
        )
        yield CounterMetricFamily(
            "mcp_client_reconnects", "Connections reopened after being lost", value=f.reconnects
        )
        yield CounterMetricFamily(
            "mcp_client_messages_sent", "JSON-RPC messages written, handshake included", value=f.messages
        )
        yield CounterMetricFamily(
            "mcp_client_bytes_sent", "Bytes of JSON-RPC messages written (no framing)", value=f.bytes
        )
        errors = CounterMetricFamily(
            "mcp_client_messages_errors",
            "Failed requests by error type (timeouts: timeout)",
            labels=["error_type"],
        )
        for key, value in sorted((f.errors or {"timeout": 0}).items()):
            errors.add_metric([key], value)
        yield errors


def _le(bound: float) -> str:
    return repr(bound)


class MetricsServer:
    """``GeneratorMetrics`` served over HTTP from a daemon thread; ``close()`` stops it."""

    def __init__(self, metrics: GeneratorMetrics, host: str, port: int) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(metrics)
        try:
            server, thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            raise PortInUseError(
                f"cannot serve generator metrics on {host}:{port}: {exc.strerror}",
                fix="pick another --metrics-port (worker i uses PORT+i)",
            ) from None
        self.url = f"http://{host}:{port}/metrics"
        self._server: WSGIServer = server
        self._thread: threading.Thread = thread

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._server.shutdown()
            self._server.server_close()
        self._thread.join(timeout=5)
