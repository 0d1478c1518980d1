"""A client replica under the controller's order (``swarm/control.py``): run, report, serve totals.

Its metrics are the load engine's own exporter (``load.exporter.GeneratorMetrics``), the
same series ``mcpswarm run --metrics-port`` serves, with two more labels: ``run`` (the run
id) and ``replica`` (``<stack>_<service>.<slot>``).  Prometheus sums them across replicas
(``sum by (le) (mcp_client_request_duration_seconds_bucket{run="..."})``), which is how the
swarm backend cross-checks the merged HDR percentiles.  After reporting, the replica keeps
serving its final totals until it is stopped, so the last scrape holds the whole run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from pytest_mcpswarm.errors import MCPSwarmError
from pytest_mcpswarm.swarm.control import ControllerClient, Order, retrying

#: How long a replica waits for the controller's start (a session may queue scenarios).
START_WAIT_S = 900.0
#: A replica that learns the start this long after it passed is a replacement task.
LATE_START_S = 1.0


class Labelled(Collector):
    """Another collector's metrics with constant labels added to every sample."""

    def __init__(self, inner: Collector, labels: dict[str, str]) -> None:
        self.inner = inner
        self.labels = dict(labels)

    def collect(self) -> Iterator[Metric]:
        for family in self.inner.collect():
            out = Metric(family.name, family.documentation, family.type, family.unit)
            for s in family.samples:
                out.add_sample(s.name, {**s.labels, **self.labels}, s.value, s.timestamp, s.exemplar)
            yield out


def metrics_registry(metrics: Collector, labels: dict[str, str]) -> CollectorRegistry:
    """The load engine's exporter with constant ``labels``, plus this process's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Labelled(metrics, labels))
    ProcessCollector(registry=registry)
    return registry


def serve_http(render: Callable[[], bytes], port: int) -> ThreadingHTTPServer:
    """``/metrics`` (``render()``) and ``/health`` on ``port``, in a daemon thread."""
    import threading

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == "/metrics":
                body, ctype = render(), "text/plain; version=0.0.4; charset=utf-8"
            elif self.path == "/health":
                body, ctype = b"ok\n", "text/plain"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


async def run_order(order: Order, metrics_port: int, stop: asyncio.Event) -> dict[str, Any]:
    """Carry out ``order``; returns the message it posted.  Serves metrics until ``stop``."""
    from pytest_mcpswarm.load.engine import Engine
    from pytest_mcpswarm.load.exporter import GeneratorMetrics
    from pytest_mcpswarm.load.worker import done_message

    metrics = GeneratorMetrics()
    registry = metrics_registry(metrics, {"run": order.run_id, "replica": order.replica})
    server = serve_http(lambda: generate_latest(registry), metrics_port)
    client = ControllerClient(order.controller)
    message: dict[str, Any]
    try:
        plan = order.share()
        await asyncio.to_thread(
            retrying, lambda: client.ready(order.run_id, order.replica), until=time.monotonic() + 60
        )
        start_at = await _wait_start(client, order.run_id, stop)
        if start_at is None:
            server.shutdown()
            server.server_close()
            return {"type": "error", "message": "stopped before the start"}
        if time.time() > start_at + LATE_START_S:
            # A replacement task (the first one died): its predecessor's measurements are lost,
            # and running now would only count the missed schedule as not sent.  Say so.
            raise MCPSwarmError(
                f"this replica started {time.time() - start_at:.1f} s after the run's start: it "
                "replaces a task that died mid-run, whose measurements are lost",
                fix="see `docker service ps --no-trunc` for why the first task died",
            )
        engine = Engine(replace(plan, start_at=start_at))
        engine.observer = metrics
        await engine.run()
        message = done_message(engine)
    except MCPSwarmError as exc:
        message = {"type": "error", "message": str(exc)}
    message |= {"replica": order.replica, "slot": order.slot, "run": order.run_id}
    with contextlib.suppress(OSError, ValueError):
        await asyncio.to_thread(
            retrying,
            lambda: client.post_result(order.run_id, order.replica, message),
            until=time.monotonic() + 60,
        )
    print(f"client {order.replica}: run {order.run_id} {message['type']}; serving totals", flush=True)
    try:
        await stop.wait()
    finally:
        server.shutdown()
        server.server_close()
    return message


async def _wait_start(client: ControllerClient, run: str, stop: asyncio.Event) -> float | None:
    deadline = time.monotonic() + START_WAIT_S
    while not stop.is_set() and time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            state = await asyncio.to_thread(client.state, run)
            if state.get("start_at") is not None:
                return float(state["start_at"])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)
    if stop.is_set():
        return None
    raise MCPSwarmError(f"no start for run {run} within {START_WAIT_S:.0f} s")
