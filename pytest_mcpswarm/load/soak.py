"""Generator soak (on demand, Linux): does the load generator itself stay flat over a long run?

``python -m pytest_mcpswarm.load.soak --minutes 10`` starts a reference server
on loopback and runs one generator worker against it at a moderate open-model
rate, sampling the worker's resident memory and open descriptors from /proc.
It prints the RSS growth after warm-up, the descriptor range and the achieved
rate against the scheduled one; exit status 1 when any of them is out of
bounds (RSS +5%, descriptors ±2, rate 0.5%).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

import orjson

from pytest_mcpswarm.capacity import procfs
from pytest_mcpswarm.load.controller import run_workers
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.load.requests import MethodSpec
from pytest_mcpswarm.load.shapes import Stage
from pytest_mcpswarm.report.jsonfile import write_json
from pytest_mcpswarm.server.launch import ServerProcess

ECHO = MethodSpec("tools/call", {"name": "echo", "arguments": {"text": "soak"}}, 1.0, "text")


async def _sample(samples: list[dict[str, Any]], every_s: float, t0: float) -> None:
    me = os.getpid()
    while True:
        await asyncio.sleep(every_s)
        for pid in procfs.descendants(me):
            if procfs.parent_map().get(pid) == me and _is_worker(pid):
                samples.append(
                    {"t": time.time() - t0, "rss": procfs.process_rss_bytes(pid), "fds": procfs.open_fds(pid)}
                )


def _is_worker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"pytest_mcpswarm.load.worker" in f.read()
    except OSError:
        return False


async def soak(
    minutes: float, *, conns: int = 10, rate: float = 200.0, warmup_s: float = 60.0
) -> dict[str, Any]:
    seconds = minutes * 60
    with ServerProcess(["--workers", "1"]) as server:
        plan = RunPlan(
            target=server.ws_url,
            methods=(ECHO,),
            stages=(Stage(seconds, conns, rate),),
            start_connections=conns,
            timeout_s=5.0,
        )
        samples: list[dict[str, Any]] = []
        sampler = asyncio.ensure_future(_sample(samples, 5.0, time.time()))
        try:
            result = await run_workers(plan, 1)
        finally:
            sampler.cancel()
    # A short run still needs samples after its warm-up.
    warm = min(warmup_s, seconds / 4)
    steady = [s for s in samples if s["t"] >= warm and s["rss"] and s["fds"] is not None]
    if len(steady) < 2:
        raise SystemExit(f"only {len(steady)} samples after warm-up: run for longer than {minutes} min")
    outcomes = result.snapshot.outcomes
    scheduled_rate = plan.ramp.scheduled_count() / seconds
    achieved_rate = (outcomes.ok + outcomes.errors) / seconds
    rss0, rss1 = steady[0]["rss"], steady[-1]["rss"]
    fds = [s["fds"] for s in steady]
    report = {
        "minutes": minutes,
        "offered": f"{conns} x {rate:g}/s",
        "rss_after_warmup_mib": round(rss0 / 2**20, 1),
        "rss_end_mib": round(rss1 / 2**20, 1),
        "rss_growth": round(rss1 / rss0 - 1, 4),
        "fds_min": min(fds),
        "fds_max": max(fds),
        "scheduled_rps": scheduled_rate,
        "achieved_rps": achieved_rate,
        "rate_shortfall": round(1 - achieved_rate / scheduled_rate, 5),
        "requests": outcomes.to_dict(),
        "samples": samples,
    }
    report["passed"] = (
        report["rss_growth"] < 0.05 and max(fds) - min(fds) <= 4 and abs(report["rate_shortfall"]) <= 0.005
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_mcpswarm.load.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--json", help="write the report (with every sample) here")
    args = parser.parse_args(argv)
    report = asyncio.run(soak(args.minutes))
    if args.json:
        write_json(args.json, report)
    print(orjson.dumps({k: v for k, v in report.items() if k != "samples"}).decode())
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
