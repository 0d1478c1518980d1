"""Driver: our load engine, run as a pinned child process; prints one JSON line.

``python -m pytest_mcpswarm.selfbench.client_engine '{"plan": {...}, "warmup": 2, "workers": 0}'``

``workers == 0`` runs the engine in this process (uvloop) and measures the
steady state only: CPU time (``getrusage``) and answered requests between the
end of warm-up second ``warmup`` and the end of the run, read at the
engine's own once-a-second fold.

``workers >= 1`` runs the ``mcpswarm run`` path (``run_workers``) and
measures the same steady-state span: the workers' CPU from the per-second
CPU they report when each window closes, plus the controller's own CPU over
the span, plus the whole merge (workers encoding, the controller decoding and
adding: a cost of every run, charged in full).  Before this, the figure ran
from each worker's engine start to its end: every worker's connection set-up,
pre-start idling and drain were charged to a window whose requests a second
worker does not multiply, so (d) counted start-up once per process; and it was
not the steady state the other cases (and ``docs/PERFORMANCE_TUNING.md``)
measure.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from typing import Any

import orjson
import uvloop

from pytest_mcpswarm.load.controller import run_workers
from pytest_mcpswarm.load.engine import Engine, process_cpu_seconds
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.stats.snapshot import StatsSnapshot
from pytest_mcpswarm.stats.window import Window


def _answered_before(snapshot: StatsSnapshot, second: int) -> int:
    return sum(w.ok + w.errors for i, w in snapshot.series.windows.items() if i < second)


async def _inprocess(plan: RunPlan, warmup: int) -> dict[str, Any]:
    marks: dict[str, tuple[float, float, int]] = {}
    last = int(plan.duration_s)

    def on_second(engine: Engine, now_s: float) -> None:
        second = int(now_s)
        if second in (warmup, last) and str(second) not in marks:
            marks[str(second)] = (
                time.perf_counter(),
                process_cpu_seconds(),
                _answered_before(engine.snapshot, second),
            )

    engine = Engine(plan, on_second=on_second)
    await engine.run()
    if str(warmup) not in marks or str(last) not in marks:
        return {"error": "the engine run ended before its measurement window closed"}
    (t0, c0, n0), (t1, c1, n1) = marks[str(warmup)], marks[str(last)]
    snap = engine.snapshot
    outcomes = snap.outcomes
    p50, p99, p999 = snap.latency.percentiles([50, 99, 99.9])
    lag99 = engine.schedule_lag.percentile(99)
    return {
        "requests": n1 - n0,
        "seconds": t1 - t0,
        "cpu_s": c1 - c0,
        "totals": outcomes.to_dict(),
        "accounting_ok": outcomes.accounting_ok(),
        "p50_ms": p50 / 1000,
        "p99_ms": p99 / 1000,
        "p999_ms": p999 / 1000,
        "lag_p99_ms": lag99 / 1000,
        "connections": engine.gauges()["connections"],
    }


async def _workers(plan: RunPlan, workers: int, warmup: int) -> dict[str, Any]:
    # Window t closes at second t + 1: the span [warmup, last) runs from window warmup - 1 to last - 1.
    first, last = warmup - 1, int(plan.duration_s) - 1
    marks: dict[int, tuple[float, float]] = {}

    def on_second(t: int, window: Window, active: int) -> None:
        if t in (first, last):
            marks[t] = (time.perf_counter(), process_cpu_seconds())

    result = await run_workers(plan, workers, on_second=on_second)
    by_second = result.cpu_by_second
    if not (first in marks and last in marks and first in by_second and last in by_second):
        return {"error": "a worker ended before its measurement window closed"}
    (t0, c0), (t1, c1) = marks[first], marks[last]
    workers_cpu = by_second[last] - by_second[first]
    outcomes = result.snapshot.outcomes
    return {
        "requests": _answered_before(result.snapshot, last + 1)
        - _answered_before(result.snapshot, first + 1),
        "seconds": t1 - t0,
        "cpu_s": workers_cpu + (c1 - c0) + result.merge_cpu_s,
        "workers_cpu_s": workers_cpu,
        "controller_cpu_s": c1 - c0,
        "merge_cpu_s": result.merge_cpu_s,
        "totals": outcomes.to_dict(),
        "accounting_ok": outcomes.accounting_ok(),
        "p50_ms": result.snapshot.latency.percentile(50) / 1000,
        "p99_ms": result.snapshot.latency.percentile(99) / 1000,
        "workers": result.workers,
    }


def main() -> int:
    args = orjson.loads(sys.argv[1])
    plan = RunPlan.from_dict(args["plan"])
    workers = int(args.get("workers", 0))
    try:
        if workers:
            out = uvloop.run(_workers(plan, workers, int(args.get("warmup", 1))))
        else:
            plan = replace(plan, start_at=time.time() + 1.0)
            out = uvloop.run(_inprocess(plan, int(args.get("warmup", 1))))
    except Exception as exc:  # one line for the harness, whatever broke
        out = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.buffer.write(orjson.dumps(out) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
