"""The worker's event loop: fires every scheduled request at its intended time and records its outcome.

One ``Engine`` runs in each generator process.  It derives its schedule from
the ``RunPlan`` alone (the load shapes are pure functions of time), so workers
never talk to each other; the controller merges their ``StatsSnapshot``s.

Executors (``plan.executor``):

- ``open`` (default): each connection sends at the times the ``Ramp`` fixes,
  whatever the server does.  A request is *scheduled* the moment its intended
  send time is reached inside the run.  While requests are due, the scheduler
  wakes on the grid ``t0 + k * tick_s`` (1 ms; a ``timerfd``, see
  ``load.ticker``: every worker of a run on the same grid, whatever a tick
  costs) and all requests one connection owes then leave in one write
  (``send_many``); a sparser schedule wakes it at its next send time.  A
  request may so wait up to one tick: that wait is in ``schedule_lag`` and in
  the latency, which is measured from the intended time.
- ``closed``: one request in flight per connection; the next one is issued
  ``think_time_s`` after the previous one ended (answer, error or timeout),
  and counted as scheduled when issued.  Latency runs from the issue time.
- ``churn``: ``closed``, and a connection is closed and reopened after every
  ``churn_calls`` calls.  Every open counts in ``connections.opened``; planned
  reopenings are not ``reconnects`` (those follow a lost connection).

After the last scheduled send, the engine waits up to the request timeout
for replies; whatever is still in flight then is a timeout.

Recording costs one ``array.append`` per reply (raw nanoseconds, per method
spec) plus, per write, its send time and the intended times of its requests
(the schedule lag) appended to flat lists; ``fold`` turns them into histograms
and counters once a second and at the end, and hands them to an optional
``FoldObserver`` (the Prometheus exporter), so nothing per request ever
touches a histogram or a lock.
"""

from __future__ import annotations

import array
import asyncio
import heapq
import resource
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from pytest_mcpswarm.errors import MCPSwarmError, ProtocolError, TransportError
from pytest_mcpswarm.load.connection import LoadConnection
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.load.requests import RequestTemplate, build_template, weighted_cycle
from pytest_mcpswarm.load.ticker import Ticker, grid_after
from pytest_mcpswarm.protocol.lifecycle import ClientLifecycle
from pytest_mcpswarm.stats.histogram import LatencyHistogram
from pytest_mcpswarm.stats.snapshot import StatsSnapshot
from pytest_mcpswarm.stats.window import Window

#: How far ahead of a connection's first scheduled send it starts connecting.
CONNECT_LEAD_S = 1.0
#: Send times are pulled from the load shape in chunks of this many seconds.
_CHUNK_S = 0.5
#: Timeouts are looked for this often (a reply later than the timeout is a timeout regardless).
_EXPIRE_EVERY_NS = 10_000_000
#: The scheduler sleeps at most this long (connection stops and the window roll are not in its heap).
_MAX_SLEEP_NS = 10_000_000
#: Period of the event-loop lag probe.
_PROBE_NS = 50_000_000

Tick = Callable[["Engine", float], None]


class FoldObserver(Protocol):
    """Told about every fold (once a second): the Prometheus exporter implements it."""

    def observe(self, method: str, latencies_us: npt.NDArray[np.int64]) -> None:
        """Successful requests of ``method`` finished since the last fold, in microseconds."""

    def publish(self, engine: Engine) -> None:
        """The fold is complete: ``engine.snapshot`` and the engine's counters are current."""


class Engine:
    def __init__(self, plan: RunPlan, *, on_second: Tick | None = None) -> None:
        self.plan = plan
        self.ramp = plan.ramp
        self.snapshot = StatsSnapshot()
        self.mix = weighted_cycle([m.weight for m in plan.methods])
        self.mix_len = len(self.mix)
        self.method_stats = [self.snapshot.method(m.method) for m in plan.methods]
        self.timeout_ns = int(plan.timeout_s * 1e9)
        self.max_lateness_ns = int(plan.max_lateness_s * 1e9)
        self.tick_ns = int(plan.tick_s * 1e9)
        # HTTP reports failures per request id; other transports don't need a fresh meta per send.
        self.per_request_meta = plan.target.startswith(("http://", "https://"))
        self.closed_loop = plan.executor in ("closed", "churn")
        self.churn_calls = plan.churn_calls if plan.executor == "churn" else 0
        self.think_ns = int(plan.think_time_s * 1e9)
        # -- hot-path counters, folded once a second ------------------------------------------
        n = len(plan.methods)
        self.scheduled = [0] * n
        self._latency_raw = [array.array("q") for _ in range(n)]
        #: Per spec: append one successful request's latency in ns.
        self.latencies: list[Callable[[int], None]] = [buf.append for buf in self._latency_raw]
        # Schedule lag: per write its send time and how many requests it carried, and their
        # intended times in one flat list; ``fold`` subtracts in numpy.  Flat lists of ints
        # on purpose: a tuple or list per write would be ~20K objects a second for the
        # garbage collector to track until the fold (measured: 4-6 % of the engine's CPU).
        self._lag_at: list[int] = []
        self._lag_n: list[int] = []
        self._lag_intended: list[int] = []
        #: One method spec: the hot paths skip the mix lookup.
        self.single = n == 1
        self.schedule_lag = LatencyHistogram()
        self.messages_sent = 0
        self.bytes_sent = 0
        #: CPU seconds (user + system) this process spent inside ``run``, and the wall time.
        self.cpu_s = 0.0
        self.wall_s = 0.0
        #: How late the loop woke a 50 ms probe timer: time every callback waited, replies too.
        self.loop_lag = LatencyHistogram()
        self.inflight_peak = 0
        self.clock_anomalies = 0
        # -- connections and health ----------------------------------------------------------------
        self.protocol_events: dict[str, int] = {}
        self.connect_errors: dict[str, int] = {}
        self.opened = 0
        self.failed = 0
        self.reconnects = 0
        self.active = 0
        self.peak = 0
        self.connections: dict[int, LoadConnection] = {}
        self._templates: dict[str | None, list[RequestTemplate]] = {}
        self._on_second = on_second
        self.observer: FoldObserver | None = None
        self.start_ns = 0
        self.end_ns = 0
        self._window: Window = self.snapshot.series.window(0)
        self._window_index = 0

    # -- templates ------------------------------------------------------------------------------

    def templates_for(self, lifecycle: ClientLifecycle) -> list[RequestTemplate]:
        """Templates for a negotiated session; the stateless envelope depends on the revision."""
        key = lifecycle.version
        if key not in self._templates:
            self._templates[key] = [
                build_template(
                    spec.method,
                    spec.params,
                    payload_bytes=self.plan.payload_bytes,
                    pad_arg=spec.pad_arg,
                    envelope=lifecycle.envelope,
                )
                for spec in self.plan.methods
            ]
        return self._templates[key]

    # -- recording of the rarer outcomes (immediate) ------------------------------------------

    def lag_sent(self, now_ns: int, intended: Sequence[int]) -> None:
        """Record one write, sent at ``now_ns``, of requests intended for ``intended``."""
        self._lag_at.append(now_ns)
        self._lag_n.append(len(intended))
        self._lag_intended += intended

    def lag_unrecord(self, count: int) -> None:
        """Take back the last ``count`` schedule-lag samples (their requests never left after all)."""
        sizes = self._lag_n
        while count > 0 and sizes:
            take = min(sizes[-1], count)
            del self._lag_intended[len(self._lag_intended) - take :]
            if take == sizes[-1]:
                sizes.pop()
                self._lag_at.pop()
            else:
                sizes[-1] -= take
            count -= take

    def error(self, spec: int, key: str) -> None:
        self.method_stats[spec].outcomes.add_error(key)
        self._window.errors += 1

    def timeout(self, spec: int) -> None:
        self.method_stats[spec].outcomes.timeouts += 1
        self._window.timeouts += 1

    def not_sent(self, spec: int, reason: str) -> None:
        self.method_stats[spec].outcomes.add_not_sent(reason)
        self._window.not_sent += 1

    def protocol_event(self, kind: str) -> None:
        key = f"protocol:{kind}"
        self.protocol_events[key] = self.protocol_events.get(key, 0) + 1

    def connected(self, conn: LoadConnection) -> None:
        self.opened += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        self._window.connects += 1

    def disconnected(self, conn: LoadConnection) -> None:
        self.active -= 1
        self._window.disconnects += 1

    def connect_failed(self, conn: LoadConnection, exc: MCPSwarmError | TimeoutError) -> None:
        self.failed += 1
        if isinstance(exc, ProtocolError):
            key = f"protocol:{exc.kind}"
        elif isinstance(exc, TransportError):
            key = f"transport:{exc.kind}"
        elif isinstance(exc, TimeoutError):
            key = "transport:timeout"
        else:
            key = f"usage:{type(exc).__name__}"
        self.connect_errors[key] = self.connect_errors.get(key, 0) + 1

    # -- folding --------------------------------------------------------------------------------

    def fold(self) -> None:
        """Move the hot-path counters and raw latencies into the snapshot (and the current window)."""
        window = self._window
        in_flight = sum(c.in_flight_count() for c in self.connections.values())
        self.inflight_peak = max(self.inflight_peak, in_flight)
        observer = self.observer
        for spec, raw in enumerate(self._latency_raw):
            stats = self.method_stats[spec]
            if self.scheduled[spec]:
                stats.outcomes.scheduled += self.scheduled[spec]
                self.scheduled[spec] = 0
            if raw:
                view = np.frombuffer(raw, dtype=np.int64)
                latency_us = self._non_negative(view // 1000)
                del view  # release the buffer, or the array cannot shrink
                del raw[:]
                LatencyHistogram.record_many_in((stats.latency, window.latency), latency_us)
                stats.outcomes.ok += len(latency_us)
                window.ok += len(latency_us)
                if observer is not None:
                    observer.observe(self.plan.methods[spec].method, latency_us)
        for stats in self.snapshot.methods.values():
            # Every scheduled request either left or is counted as not sent.
            stats.outcomes.sent = stats.outcomes.scheduled - stats.outcomes.not_sent
        if self._lag_at:
            sent = np.repeat(np.fromiter(self._lag_at, np.int64), np.fromiter(self._lag_n, np.int64))
            lag_ns = sent - np.fromiter(self._lag_intended, np.int64, len(self._lag_intended))
            self._lag_at.clear()
            self._lag_n.clear()
            self._lag_intended.clear()
            self.schedule_lag.record_many(self._non_negative(lag_ns // 1000))
        if observer is not None:
            observer.publish(self)

    def _non_negative(self, values_us: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """A negative duration would end the run in the histogram; count it and record 0 instead.

        It should never happen (replies come after sends, sends after their intended time);
        ``clock_anomalies`` in the report says if it ever does.
        """
        if values_us.size and int(values_us.min()) < 0:
            self.clock_anomalies += int((values_us < 0).sum())
            return np.maximum(values_us, 0)
        return values_us

    def _roll_window(self, now_s: float) -> None:
        index = int(now_s) if now_s > 0 else 0
        if index != self._window_index:
            self.fold()
            previous = self._window_index
            self._window_index = index
            self._window = self.snapshot.series.window(index)
            if self._on_second is not None and index > previous:
                self._on_second(self, now_s)

    # -- the run ------------------------------------------------------------------------------

    def _now_s(self) -> float:
        return (time.perf_counter_ns() - self.start_ns) / 1e9

    def _refill(self, conn: LoadConnection, heap: list[tuple[int, int]]) -> None:
        """Pull the connection's next send times from the shape; queue it at its next one."""
        duration = self.ramp.duration_s
        while conn.pos >= len(conn.times) and conn.read_to < duration:
            a = conn.read_to
            b = min(a + _CHUNK_S, duration)
            conn.read_to = b
            offsets = np.round(self.ramp.send_times(conn.index, a, b) * 1e9).astype(np.int64)
            conn.times = (offsets + self.start_ns).tolist()
            conn.pos = 0
        if conn.pos < len(conn.times):
            heapq.heappush(heap, (conn.times[conn.pos], conn.index))

    def wake_at(self, now_ns: int, next_send_ns: int | None, next_start_ns: int | None) -> int:
        """When the scheduler next wakes: at the next send, but not before the next tick of the
        grid ``start + k * tick`` (so a tick's sends leave together), or at the next connection
        start or the end, and at most ``_MAX_SLEEP_NS`` from now (stops and window rolls)."""
        wake_ns = self.end_ns if next_send_ns is None else next_send_ns
        if next_start_ns is not None:
            wake_ns = min(wake_ns, next_start_ns)
        wake_ns = min(wake_ns, now_ns + _MAX_SLEEP_NS)
        if next_send_ns is not None:
            wake_ns = max(wake_ns, grid_after(now_ns, self.start_ns, self.tick_ns))
        return wake_ns

    def _expire_all(self, now_ns: int) -> None:
        for conn in self.connections.values():
            conn.expire(now_ns)

    async def run(self) -> StatsSnapshot:
        """Run the plan to the end; returns everything recorded (also kept in ``self.snapshot``)."""
        plan = self.plan
        ramp = self.ramp
        cpu0 = process_cpu_seconds()
        wall0 = time.perf_counter()
        ticker = Ticker()
        probe = asyncio.ensure_future(self._probe_loop())
        # t=0 is the shared start time; translate it onto this process's monotonic clock.
        self.start_ns = time.perf_counter_ns() + int((plan.start_at - time.time()) * 1e9)
        duration = ramp.duration_s
        self.end_ns = self.start_ns + int(duration * 1e9)
        mine = set(plan.my_connections())
        spans = [s for s in ramp.connection_spans() if s.connection in mine]
        starts = sorted(
            (max(s.start_s - CONNECT_LEAD_S, -CONNECT_LEAD_S), s.start_s, s.connection) for s in spans
        )
        stops = sorted((s.stop_s, s.connection) for s in spans if s.stop_s < duration)
        for _, _, index in starts:
            self.connections.setdefault(index, LoadConnection(self, index))
        heap: list[tuple[int, int]] = []
        if not self.closed_loop:
            for conn in self.connections.values():
                self._refill(conn, heap)

        stopping: list[asyncio.Future[None]] = []
        perf = time.perf_counter_ns
        heapreplace, heappop = heapq.heapreplace, heapq.heappop
        connections = self.connections
        next_expiry = 0
        try:
            while True:
                now_ns = perf()
                now_s = (now_ns - self.start_ns) / 1e9
                while starts and starts[0][0] <= now_s:
                    _, span_start_s, index = heappop(starts)
                    connections[index].start(self.start_ns + int(span_start_s * 1e9))
                while stops and stops[0][0] <= now_s:
                    stopping.append(asyncio.ensure_future(connections[heappop(stops)[1]].stop()))
                self._roll_window(now_s)
                while heap and heap[0][0] <= now_ns:
                    index = heap[0][1]
                    conn = connections[index]
                    following = conn.fire_due(now_ns)
                    if following >= 0:
                        heapreplace(heap, (following, index))
                    else:
                        heappop(heap)
                        self._refill(conn, heap)
                if now_ns >= next_expiry:
                    self._expire_all(now_ns)
                    next_expiry = now_ns + _EXPIRE_EVERY_NS
                if now_s >= duration and not heap:
                    break
                await ticker.until(
                    self.wake_at(
                        perf(),
                        heap[0][0] if heap else None,
                        self.start_ns + int(starts[0][0] * 1e9) if starts else None,
                    )
                )
            await self._drain()
            await asyncio.gather(*stopping)
        finally:
            ticker.close()
            await asyncio.gather(*(c.stop() for c in connections.values()), return_exceptions=True)
            self._roll_window(self._now_s())
            self.snapshot.mark_elapsed(duration)
            self.fold()
            self.cpu_s = process_cpu_seconds() - cpu0
            self.wall_s = time.perf_counter() - wall0
            probe.cancel()
            await asyncio.gather(probe, return_exceptions=True)
        return self.snapshot

    async def _probe_loop(self) -> None:
        period_ns = _PROBE_NS
        record = self.loop_lag.record
        perf = time.perf_counter_ns
        while True:
            before = perf()
            await asyncio.sleep(period_ns / 1e9)
            record(max(0, perf() - before - period_ns) // 1000)

    async def _drain(self) -> None:
        """Wait for in-flight replies until each request's deadline; leftovers become timeouts."""
        while any(any(c.sent) for c in self.connections.values()):
            now_ns = time.perf_counter_ns()
            self._roll_window(self._now_s())
            self._expire_all(now_ns)
            await asyncio.sleep(0.005)

    def gauges(self) -> dict[str, Any]:
        """Connection and generator-health figures that are not per-request counters."""
        return {
            "connections": {
                "opened": self.opened,
                "failed": self.failed,
                "peak": self.peak,
                "reconnects": self.reconnects,
                "active": self.active,
            },
            "connect_errors": dict(self.connect_errors),
            "protocol_events": dict(self.protocol_events),
            "messages_sent": self.messages_sent,
            "bytes_sent": self.bytes_sent,
            "cpu_s": self.cpu_s,
            "wall_s": self.wall_s,
            "loop_lag": self.loop_lag.to_dict(),
            "inflight_peak": self.inflight_peak,
            "clock_anomalies": self.clock_anomalies,
        }


def process_cpu_seconds() -> float:
    """CPU seconds (user + system) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
