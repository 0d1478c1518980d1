"""Driver: our load engine, run as a pinned child process; prints one JSON line.

``python -m pytest_mcpswarm.selfbench.client_engine '{"plan": {...}, "warmup": 2, "workers": 0}'``

``workers == 0`` runs the engine in this process (uvloop) and measures the
steady state only: CPU time (``getrusage``) and answered requests between the
end of warm-up second ``warmup`` and the end of the run, read at the
engine's own once-a-second fold.  ``workers >= 1`` runs the controller with
that many worker processes and reports the CPU of the controller (around
``run_workers``, merge included) plus each worker's own engine CPU, so
process start-up and imports are left out of both figures alike.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import replace
from typing import Any

import orjson
import uvloop

from pytest_mcpswarm.load.controller import run_workers
from pytest_mcpswarm.load.engine import Engine
from pytest_mcpswarm.load.plan import RunPlan


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _answered_before(engine: Engine, second: int) -> int:
    windows = engine.snapshot.series.windows
    return sum(w.ok + w.errors for i, w in windows.items() if i < second)


async def _inprocess(plan: RunPlan, warmup: int) -> dict[str, Any]:
    marks: dict[str, tuple[float, float, int]] = {}
    last = int(plan.duration_s)

    def on_second(engine: Engine, now_s: float) -> None:
        second = int(now_s)
        if second in (warmup, last) and str(second) not in marks:
            marks[str(second)] = (time.perf_counter(), cpu_seconds(), _answered_before(engine, second))

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


async def _workers(plan: RunPlan, workers: int) -> dict[str, Any]:
    c0, t0 = cpu_seconds(), time.perf_counter()
    result = await run_workers(plan, workers)
    c1, t1 = cpu_seconds(), time.perf_counter()
    outcomes = result.snapshot.outcomes
    return {
        "requests": outcomes.ok + outcomes.errors,
        "seconds": t1 - t0,
        "cpu_s": (c1 - c0) + result.cpu_s,
        "controller_cpu_s": c1 - c0,
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
            out = uvloop.run(_workers(plan, workers))
        else:
            plan = replace(plan, start_at=time.time() + 1.0)
            out = uvloop.run(_inprocess(plan, int(args.get("warmup", 1))))
    except Exception as exc:  # one line for the harness, whatever broke
        out = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.buffer.write(orjson.dumps(out) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
