"""The worker's event loop: fires every scheduled request at its intended time and records its outcome.

One ``Engine`` runs in each generator process.  It derives its schedule from
the ``RunPlan`` alone (the load shapes are pure functions of time), so workers
never talk to each other; the controller merges their ``StatsSnapshot``s.

Accounting: a request is *scheduled* the moment its intended send time is
reached inside the run, and from then on ends in exactly one outcome (see
``connection``).  After the last scheduled send, the engine waits up to the
request timeout for replies; whatever is still in flight then is a timeout.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable
from typing import Any

from pytest_mcpswarm.errors import MCPSwarmError, ProtocolError, TransportError
from pytest_mcpswarm.load.connection import LoadConnection
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.load.requests import RequestTemplate, build_template, weighted_cycle
from pytest_mcpswarm.protocol.lifecycle import ClientLifecycle
from pytest_mcpswarm.stats.histogram import LatencyHistogram
from pytest_mcpswarm.stats.snapshot import StatsSnapshot
from pytest_mcpswarm.stats.window import Window

#: How far ahead of a connection's first scheduled send it starts connecting.
CONNECT_LEAD_S = 1.0
#: Send times are pulled from the load shape in chunks of this many seconds.
_CHUNK_S = 0.5

Tick = Callable[["Engine", float], None]


class Engine:
    def __init__(self, plan: RunPlan, *, on_second: Tick | None = None) -> None:
        self.plan = plan
        self.ramp = plan.ramp
        self.snapshot = StatsSnapshot()
        self.mix = weighted_cycle([m.weight for m in plan.methods])
        self.method_stats = [self.snapshot.method(m.method) for m in plan.methods]
        self.timeout_ns = int(plan.timeout_s * 1e9)
        self.max_lateness_ns = int(plan.max_lateness_s * 1e9)
        # HTTP reports failures per request id; other transports don't need a fresh meta per send.
        self.per_request_meta = plan.target.startswith(("http://", "https://"))
        self.schedule_lag = LatencyHistogram()
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
        self.start_ns = 0
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

    # -- recording (hot path: plain attribute bumps and array appends) --------------------------

    def sent(self, spec: int, lag_ns: int) -> None:
        self.method_stats[spec].outcomes.sent += 1
        self.schedule_lag.record(lag_ns // 1000 if lag_ns > 0 else 0)

    def ok(self, spec: int, intended_ns: int, now_ns: int) -> None:
        latency_us = (now_ns - intended_ns) // 1000
        stats = self.method_stats[spec]
        stats.outcomes.ok += 1
        stats.latency.record(latency_us)
        window = self._window
        window.ok += 1
        window.latency.record(latency_us)

    def error(self, spec: int, key: str, now_ns: int) -> None:
        self.method_stats[spec].outcomes.add_error(key)
        self._window.errors += 1

    def timeout(self, spec: int, now_ns: int) -> None:
        self.method_stats[spec].outcomes.timeouts += 1
        self._window.timeouts += 1

    def not_sent(self, spec: int, intended_ns: int, reason: str) -> None:
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

    # -- the run ------------------------------------------------------------------------------

    def _now_s(self) -> float:
        return (time.perf_counter_ns() - self.start_ns) / 1e9

    def _roll_window(self, now_s: float) -> None:
        index = int(now_s) if now_s > 0 else 0
        if index != self._window_index:
            previous = self._window_index
            self._window_index = index
            self._window = self.snapshot.series.window(index)
            if self._on_second is not None and index > previous:
                self._on_second(self, now_s)

    async def run(self) -> StatsSnapshot:
        """Run the plan to the end; returns everything recorded (also kept in ``self.snapshot``)."""
        plan = self.plan
        ramp = self.ramp
        # t=0 is the shared start time; translate it onto this process's monotonic clock.
        self.start_ns = time.perf_counter_ns() + int((plan.start_at - time.time()) * 1e9)
        duration = ramp.duration_s
        mine = set(plan.my_connections())
        spans = [s for s in ramp.connection_spans() if s.connection in mine]
        starts = sorted((max(s.start_s - CONNECT_LEAD_S, -CONNECT_LEAD_S), s.connection) for s in spans)
        stops = sorted((s.stop_s, s.connection) for s in spans if s.stop_s < duration)
        for _, index in starts:
            self.connections.setdefault(index, LoadConnection(self, index))
        # Per connection: pending send times (a list, cheap to walk) and how far the shape was read.
        pending: dict[int, list[float]] = {i: [] for i in self.connections}
        read_to: dict[int, float] = dict.fromkeys(self.connections, 0.0)
        heap: list[tuple[float, int]] = []

        def refill(index: int) -> None:
            while not pending[index] and read_to[index] < duration:
                a = read_to[index]
                b = min(a + _CHUNK_S, duration)
                read_to[index] = b
                pending[index] = ramp.send_times(index, a, b).tolist()[::-1]
            if pending[index]:
                heapq.heappush(heap, (pending[index][-1], index))

        for index in self.connections:
            refill(index)

        loop_sleep = asyncio.sleep
        stopping: list[asyncio.Future[None]] = []
        perf = time.perf_counter_ns
        try:
            while True:
                now_ns = perf()
                now_s = (now_ns - self.start_ns) / 1e9
                while starts and starts[0][0] <= now_s:
                    self.connections[heapq.heappop(starts)[1]].start()
                while stops and stops[0][0] <= now_s:
                    stopping.append(asyncio.ensure_future(self.connections[heapq.heappop(stops)[1]].stop()))
                self._roll_window(now_s)
                while heap and heap[0][0] <= now_s:
                    _, index = heapq.heappop(heap)
                    conn = self.connections[index]
                    times = pending[index]
                    while times and times[-1] <= now_s:
                        intended_ns = self.start_ns + int(times.pop() * 1e9)
                        self.method_stats[self.mix[conn.mix_pos % len(self.mix)]].outcomes.scheduled += 1
                        conn.fire(intended_ns, now_ns)
                    refill(index)
                for conn in self.connections.values():
                    if conn.deadlines:
                        conn.expire(now_ns)
                if now_s >= duration and not heap:
                    break
                next_due = min(heap[0][0] if heap else duration, starts[0][0] if starts else duration)
                await loop_sleep(max(0.0, min(next_due - self._now_s(), 0.01)))
            await self._drain()
            await asyncio.gather(*stopping)
        finally:
            await asyncio.gather(*(c.stop() for c in self.connections.values()), return_exceptions=True)
            self._roll_window(self._now_s())
            self.snapshot.mark_elapsed(duration)
        return self.snapshot

    async def _drain(self) -> None:
        """Wait for in-flight replies until each request's deadline; leftovers become timeouts."""
        while any(c.inflight for c in self.connections.values()):
            now_ns = time.perf_counter_ns()
            self._roll_window(self._now_s())
            for conn in self.connections.values():
                conn.expire(now_ns)
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
        }
