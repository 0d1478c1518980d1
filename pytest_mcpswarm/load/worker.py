"""A generator process: reads a ``RunPlan`` on stdin, runs it, writes JSON lines on stdout.

Lines: ``{"type": "second", ...}`` once per second for live displays, then
one ``{"type": "done", "snapshot": ..., "gauges": ..., "schedule_lag": ...}``
or ``{"type": "error", "message": ...}``.  Stdout carries nothing else.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson

from pytest_mcpswarm.errors import MCPSwarmError
from pytest_mcpswarm.load.engine import Engine, process_cpu_seconds
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.procs import die_with_parent


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(message) + b"\n")
    sys.stdout.buffer.flush()


def _second(engine: Engine, now_s: float) -> None:
    index = int(now_s) - 1
    window = engine.snapshot.series.window(index)
    _emit(
        {
            "type": "second",
            "t": index,
            "window": window.to_dict(),
            "active": engine.active,
            # This process's CPU seconds when window ``t`` closed: steady-state CPU per request.
            "cpu_s": process_cpu_seconds(),
        }
    )


def done_message(engine: Engine) -> dict[str, Any]:
    cpu0 = process_cpu_seconds()
    gauges = engine.gauges()
    message = {
        "type": "done",
        "snapshot": engine.snapshot.to_dict(),
        "gauges": gauges,
        "schedule_lag": engine.schedule_lag.to_dict(),
    }
    # The worker's share of the merge: encoding what it measured (HdrHistogram V2 blobs).
    gauges["encode_cpu_s"] = process_cpu_seconds() - cpu0
    return message


async def run_engine(plan: RunPlan, *, live: bool = False) -> Engine:
    """Run ``plan``; with ``plan.metrics_port`` set, serve Prometheus metrics on port + worker index."""
    engine = Engine(plan, on_second=_second if live else None)
    server = None
    if plan.metrics_port is not None:
        from pytest_mcpswarm.load.exporter import GeneratorMetrics, MetricsServer

        metrics = GeneratorMetrics()
        engine.observer = metrics
        server = MetricsServer(metrics, plan.metrics_host, plan.metrics_port + plan.worker_index)
    try:
        await engine.run()
    finally:
        if server is not None:
            server.close()
    return engine


def main() -> int:
    die_with_parent()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass
    try:
        plan = RunPlan.from_dict(orjson.loads(sys.stdin.buffer.readline()))
        engine = asyncio.run(run_engine(plan, live=True))
    except MCPSwarmError as exc:
        _emit({"type": "error", "message": str(exc)})
        return 2
    except KeyboardInterrupt:
        return 130
    _emit(done_message(engine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
