"""Measure this machine's generator: one worker, one core, against a local reference server.

The figure is requests answered per CPU-second of the generator process,
which does not depend on how busy the rest of the machine is (CPU time is
per process).  The reference server runs on loopback in a child process and
is stopped afterwards, whatever happens.
"""

from __future__ import annotations

import asyncio

from pytest_mcpswarm.capacity.sizing import Calibration, calibration_from_run
from pytest_mcpswarm.load.controller import run_workers
from pytest_mcpswarm.load.plan import plan_from_profile
from pytest_mcpswarm.load.profiles import Profile, override
from pytest_mcpswarm.report.document import machine_info
from pytest_mcpswarm.server.launch import ServerProcess


async def calibrate_against(target: str, profile: Profile, *, rate: float, seconds: float) -> Calibration:
    """One single-worker open-model run of ``profile`` at ``rate`` req/s in total against ``target``."""
    flat = override(profile, rate=rate / profile.clients, duration_s=seconds, executor="open", churn_calls=0)
    plan = plan_from_profile(flat, target=target, timeout_s=5.0)
    result = await run_workers(plan, 1)
    totals = result.snapshot.outcomes
    return calibration_from_run(
        profile.name,
        answered=totals.ok + totals.errors,
        cpu_s=result.cpu_s,
        seconds=plan.duration_s,
        offered_rps=rate,
        machine=machine_info(),
    )


def next_calibration_rate(cal: Calibration, *, target_cpu: float) -> float | None:
    """The rate of the next round, or None when this one is close enough to the operating point.

    A generator core gets cheaper per request as it gets busier (writes are
    batched), so a figure measured at 20 % of a core would under-count what it
    does at 70 %.  The next round scales the rate toward ``target_cpu`` (at
    most 4x), unless the server fell behind (answered < 95 % of offered):
    then a higher rate would measure the server, not the generator.
    """
    if cal.cpu_fraction >= 0.8 * target_cpu:
        return None
    if cal.answered < 0.95 * cal.offered_rps * cal.seconds:
        return None
    return cal.offered_rps * min(4.0, target_cpu / max(cal.cpu_fraction, 1e-3))


def calibrate(
    profile: Profile, *, rate: float, seconds: float, rounds: int = 3, target_cpu: float = 0.7
) -> Calibration:
    """Start a reference server on loopback, measure in up to ``rounds`` rounds, stop it."""

    async def measure(url: str) -> Calibration:
        cal = await calibrate_against(url, profile, rate=rate, seconds=seconds)
        for _ in range(rounds - 1):
            nxt = next_calibration_rate(cal, target_cpu=target_cpu)
            if nxt is None:
                break
            cal = await calibrate_against(url, profile, rate=nxt, seconds=seconds)
        return cal

    with ServerProcess([]) as server:
        return asyncio.run(measure(server.ws_url))
