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

from pytest_mcpswarm.errors import WorkerError
from pytest_mcpswarm.load.engine import process_cpu_seconds
from pytest_mcpswarm.load.health import DEFAULT_RULE, GeneratorRule
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.stats.histogram import LatencyHistogram
from pytest_mcpswarm.stats.snapshot import StatsSnapshot
from pytest_mcpswarm.stats.window import Window

#: Largest line a worker may write: its ``done`` message grows with the run's length.
_MESSAGE_LIMIT = 1 << 30
#: Time between launching workers and t=0: imports and connection set-up happen before.
START_DELAY_S = 1.5


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
    #: Each worker's CPU use over its run, as a fraction of one core.
    worker_cpu: list[float] = field(default_factory=list)
    loop_lag: LatencyHistogram = field(default_factory=LatencyHistogram)
    inflight_peak: int = 0
    #: Negative durations recorded as 0 (should stay 0; see Engine._non_negative).
    clock_anomalies: int = 0
    #: Second ``t`` -> CPU seconds of all worker processes when window ``t`` closed, for the
    #: seconds every worker reported (``run_workers`` only; ``add`` leaves it alone): the CPU
    #: of a steady-state span is the difference of two entries.
    cpu_by_second: dict[int, float] = field(default_factory=dict)
    #: CPU seconds the merge cost: workers encoding their results, the controller decoding and adding.
    merge_cpu_s: float = 0.0

    def add(self, other: RunResult) -> None:
        """Fold in another part of the same run: every field is a sum, so merging is exact.

        Peaks of different parts may not coincide, so the summed peak bounds
        the true one from above.
        """
        self.snapshot.merge(other.snapshot)
        self.schedule_lag.add(other.schedule_lag)
        self.loop_lag.add(other.loop_lag)
        self.workers += other.workers
        _sum_into(self.connections, other.connections)
        _sum_into(self.connect_errors, other.connect_errors)
        _sum_into(self.protocol_events, other.protocol_events)
        self.cpu_s += other.cpu_s
        self.worker_cpu.extend(other.worker_cpu)
        self.inflight_peak += other.inflight_peak
        self.clock_anomalies += other.clock_anomalies
        self.merge_cpu_s += other.merge_cpu_s

    def generator_reasons(self, rule: GeneratorRule = DEFAULT_RULE) -> list[str]:
        """Why the generator, not the server, limited this run (empty: it did not)."""
        late = self.snapshot.outcomes.not_sent_by_reason.get("late", 0)
        latency = self.snapshot.latency
        lag, loop = self.schedule_lag, self.loop_lag
        return rule.reasons(
            schedule_lag_p99_ms=lag.percentile(99) / 1000 if lag.total_count else None,
            latency_p99_ms=latency.percentile(99) / 1000 if latency.total_count else None,
            loop_lag_p99_ms=loop.percentile(99) / 1000 if loop.total_count else None,
            not_sent_late=late,
            worker_cpu=self.worker_cpu,
        )


def _sum_into(target: dict[str, int], source: dict[str, int]) -> None:
    for key, value in source.items():
        target[key] = target.get(key, 0) + value


def _from_done(plan: RunPlan, message: dict[str, Any]) -> RunResult:
    """One worker's ``done`` message as a RunResult."""
    gauges = message["gauges"]
    cpu_s = float(gauges.get("cpu_s", 0.0))
    wall_s = float(gauges.get("wall_s", 0.0))
    result = RunResult(
        plan,
        StatsSnapshot.from_dict(message["snapshot"]),
        LatencyHistogram.from_dict(message["schedule_lag"]),
        1,
        connections=dict(gauges["connections"]),
        connect_errors=dict(gauges["connect_errors"]),
        protocol_events=dict(gauges["protocol_events"]),
        cpu_s=cpu_s,
        worker_cpu=[cpu_s / wall_s if wall_s > 0 else 0.0],
        inflight_peak=int(gauges.get("inflight_peak", 0)),
        clock_anomalies=int(gauges.get("clock_anomalies", 0)),
        merge_cpu_s=float(gauges.get("encode_cpu_s", 0.0)),
    )
    if "loop_lag" in gauges:
        result.loop_lag = LatencyHistogram.from_dict(gauges["loop_lag"])
    return result


def merge_done(plan: RunPlan, messages: list[dict[str, Any]]) -> RunResult:
    """Merge the ``done`` messages of all workers (the same code for every backend)."""
    result = RunResult(plan, StatsSnapshot(), LatencyHistogram(), 0)
    for message in messages:
        result.add(_from_done(plan, message))
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
                # The final message carries every 1 s histogram: megabytes for a long run.
                limit=_MESSAGE_LIMIT,
            )
            assert proc.stdin is not None
            proc.stdin.write(orjson.dumps(part.to_dict()) + b"\n")
            await proc.stdin.drain()
            proc.stdin.close()
            procs.append(proc)
        live: dict[int, tuple[Window, dict[int, int]]] = {}
        cpu_seen: dict[int, list[float]] = {}
        decode_cpu_s = 0.0

        async def read(worker: int, proc: asyncio.subprocess.Process) -> dict[str, Any]:
            nonlocal decode_cpu_s
            assert proc.stdout is not None
            async for line in proc.stdout:
                cpu0 = process_cpu_seconds()
                message = orjson.loads(line)
                if message["type"] == "done":
                    decode_cpu_s += process_cpu_seconds() - cpu0
                    return dict(message)
                if message["type"] == "error":
                    raise WorkerError(f"worker {worker}: {message['message']}", fix="")
                if message["type"] == "second" and "cpu_s" in message:
                    cpu_seen.setdefault(int(message["t"]), []).append(float(message["cpu_s"]))
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
        cpu0 = process_cpu_seconds()
        result = merge_done(plan, list(done))
        result.merge_cpu_s += decode_cpu_s + process_cpu_seconds() - cpu0
        result.cpu_by_second = {t: sum(v) for t, v in cpu_seen.items() if len(v) == len(procs)}
        return result
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
