"""Runs a plan on N generator processes and merges what they measured, exactly.

Workers are separate processes (the GIL caps one process at one core); each
gets its share of the connections and the shared start time.  Their final
``StatsSnapshot``s are merged by addition, so percentiles come from one
merged histogram, never from averaged percentiles.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from pytest_mcpswarm.errors import MCPSwarmError
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.stats.histogram import LatencyHistogram
from pytest_mcpswarm.stats.snapshot import StatsSnapshot
from pytest_mcpswarm.stats.window import Window

#: Time between launching workers and t=0: imports and connection set-up happen before.
START_DELAY_S = 1.5


class WorkerError(MCPSwarmError):
    """A generator process failed or exited without reporting its measurements."""

    fix = "rerun with MCPSWARM_DEBUG=1 to see the worker's output"


@dataclass
class RunResult:
    """Merged measurements of every worker."""

    plan: RunPlan
    snapshot: StatsSnapshot
    schedule_lag: LatencyHistogram
    workers: int
    connections: dict[str, int] = field(default_factory=dict)
    connect_errors: dict[str, int] = field(default_factory=dict)
    protocol_events: dict[str, int] = field(default_factory=dict)
    #: CPU seconds the workers spent inside their engines (start-up and imports excluded).
    cpu_s: float = 0.0


def _sum_into(target: dict[str, int], source: dict[str, int]) -> None:
    for key, value in source.items():
        target[key] = target.get(key, 0) + value


def merge_done(plan: RunPlan, messages: list[dict[str, Any]]) -> RunResult:
    """Merge the ``done`` messages of all workers (the same code for every backend)."""
    result = RunResult(plan, StatsSnapshot(), LatencyHistogram(), len(messages))
    for message in messages:
        result.snapshot.merge(StatsSnapshot.from_dict(message["snapshot"]))
        result.schedule_lag.add(LatencyHistogram.from_dict(message["schedule_lag"]))
        gauges = message["gauges"]
        conns = dict(gauges["connections"])
        peak = conns.pop("peak", 0)
        _sum_into(result.connections, conns)
        # Peaks of different workers may not coincide; their sum bounds the true peak from above.
        result.connections["peak"] = result.connections.get("peak", 0) + peak
        _sum_into(result.connect_errors, gauges["connect_errors"])
        _sum_into(result.protocol_events, gauges["protocol_events"])
        result.cpu_s += float(gauges.get("cpu_s", 0.0))
    return result


Progress = Callable[[int, Window, int], None]


async def run_workers(plan: RunPlan, workers: int, *, on_second: Progress | None = None) -> RunResult:
    """Run ``plan`` on ``workers`` processes; ``on_second(t, window, active)`` gets live per-second data."""
    plan = replace(plan, start_at=time.time() + START_DELAY_S)
    parts = plan.split(max(1, workers))
    env = dict(os.environ)
    procs: list[asyncio.subprocess.Process] = []
    try:
        for part in parts:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "pytest_mcpswarm.load.worker",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=None if os.environ.get("MCPSWARM_DEBUG") else asyncio.subprocess.DEVNULL,
                env=env,
            )
            assert proc.stdin is not None
            proc.stdin.write(orjson.dumps(part.to_dict()) + b"\n")
            await proc.stdin.drain()
            proc.stdin.close()
            procs.append(proc)
        live: dict[int, tuple[Window, dict[int, int]]] = {}

        async def read(worker: int, proc: asyncio.subprocess.Process) -> dict[str, Any]:
            assert proc.stdout is not None
            async for line in proc.stdout:
                message = orjson.loads(line)
                if message["type"] == "done":
                    return dict(message)
                if message["type"] == "error":
                    raise WorkerError(f"worker {worker}: {message['message']}", fix="")
                if message["type"] == "second" and on_second is not None:
                    t = int(message["t"])
                    window, actives = live.setdefault(t, (Window(), {}))
                    window.add(Window.from_dict(message["window"]))
                    actives[worker] = int(message["active"])
                    if len(actives) == len(procs):
                        on_second(t, window, sum(actives.values()))
                        del live[t]
            code = await proc.wait()
            raise WorkerError(f"worker {worker} exited with status {code} before reporting its results")

        done = await asyncio.gather(*(read(i, p) for i, p in enumerate(procs)))
        for proc in procs:
            await proc.wait()
        return merge_done(plan, list(done))
    finally:
        for proc in procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


async def run_inprocess(plan: RunPlan) -> RunResult:
    """Run ``plan`` in this process and event loop (tests; one core at most)."""
    from pytest_mcpswarm.load.worker import done_message, run_engine

    plan = replace(plan, start_at=time.time() + 0.2)
    engine = await run_engine(plan)
    return merge_done(plan, [done_message(engine)])
