"""The controller reads a worker's ``done`` line through a real pipe, whatever its size.

A worker's last message carries every 1 s histogram of its run, so it grows
with the run: past 64 KiB (asyncio's default ``StreamReader`` line limit) the
controller used to fail with "Separator is not found, and chunk exceed the
limit" and lose the run.  Here two stand-in workers (real processes, real
pipes, ``run_workers``'s own read path) each print a genuine ``done``
message of several hundred KiB, built by the worker's ``done_message``, and
the merge must come out exact.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from pytest_mcpswarm.load import controller
from pytest_mcpswarm.load.engine import Engine
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.load.requests import MethodSpec
from pytest_mcpswarm.load.shapes import Stage
from pytest_mcpswarm.load.worker import done_message
from pytest_mcpswarm.stats.snapshot import StatsSnapshot

DEFAULT_LINE_LIMIT = 64 * 1024
SECONDS = 400
METHODS = ("tools/list", "resources/list", "ping")
TIMEOUT_S = 30.0

#: A stand-in worker: read the plan line as a worker does, then print a prepared message file.
FAKE_WORKER = (
    "import sys; sys.stdin.buffer.readline(); sys.stdout.buffer.write(open(sys.argv[1], 'rb').read())"
)


def _plan() -> RunPlan:
    return RunPlan(
        target="ws://127.0.0.1:9/mcp/ws",
        methods=tuple(MethodSpec(m, None, 1.0) for m in METHODS),
        stages=(Stage(float(SECONDS), 2, 10.0),),
        start_connections=2,
    )


def _done_line(plan: RunPlan) -> bytes:
    """One worker's ``done`` line after a long run: many windows, every one with a spread of latencies."""
    engine = Engine(plan)
    rng = np.random.default_rng(7)
    for t in range(SECONDS):
        window = engine.snapshot.series.window(t)
        for method in METHODS:
            stats = engine.snapshot.method(method)
            latency_us = rng.lognormal(mean=7.0, sigma=1.5, size=300).astype(np.int64) + 1
            stats.latency.record_many(latency_us)
            window.latency.record_many(latency_us)
            stats.outcomes.scheduled += len(latency_us) + 1
            stats.outcomes.ok += len(latency_us)
            stats.outcomes.add_error("jsonrpc:-32603")
            window.ok += len(latency_us)
            window.errors += 1
    engine.snapshot.mark_elapsed(float(SECONDS))
    engine.schedule_lag.record_many(np.arange(1, 5_000, dtype=np.int64))
    return orjson.dumps(done_message(engine)) + b"\n"


def test_done_message_larger_than_the_default_line_limit_is_read_and_merged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = _plan()
    line = _done_line(plan)
    assert len(line) > 4 * DEFAULT_LINE_LIMIT, "the message must be far past asyncio's default limit"
    message_file = tmp_path / "done.jsonl"
    message_file.write_bytes(line)

    real_exec: Callable[..., Awaitable[asyncio.subprocess.Process]] = asyncio.create_subprocess_exec
    launched: list[dict[str, Any]] = []

    async def stand_in(*argv: str, **kwargs: Any) -> asyncio.subprocess.Process:
        assert argv[1:] == ("-m", "pytest_mcpswarm.load.worker")
        launched.append(kwargs)
        return await real_exec(sys.executable, "-c", FAKE_WORKER, str(message_file), **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", stand_in)
    # With the default limit the read fails, the reader stops draining the pipe and the
    # clean-up waits for its end forever: the timeout turns that hang into a failure.
    result = asyncio.run(asyncio.wait_for(controller.run_workers(plan, 2), timeout=TIMEOUT_S))

    assert len(launched) == 2
    assert result.workers == 2
    one = StatsSnapshot.from_dict(orjson.loads(line)["snapshot"])
    expected = StatsSnapshot.merged([one, one])
    assert result.snapshot == expected
    assert len(result.snapshot.series.windows) == SECONDS
    outcomes = result.snapshot.outcomes
    assert outcomes.ok == 2 * SECONDS * len(METHODS) * 300
    assert outcomes.errors == 2 * SECONDS * len(METHODS)
    assert outcomes.accounting_ok()
    assert result.snapshot.latency.total_count == outcomes.ok
    assert result.snapshot.latency.percentile(99) == one.latency.percentile(99)
    assert result.schedule_lag.total_count == 2 * 4_999
    assert result.merge_cpu_s >= 0.0
