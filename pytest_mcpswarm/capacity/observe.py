"""A run with its resources sampled alongside, ending in a bottleneck verdict.

    result, attribution = await observed_run(plan, workers=2, server_pids=(server.proc.pid,))
    scenario = document.scenario("x", result, ...) | {"attribution": attribution}

``report.html`` draws a scenario's ``attribution`` as charts beside the others.
On swarm the backend samples its replicas with ``docker_stats`` instead and
calls ``attribution_of`` the same way.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from pytest_mcpswarm.capacity import procfs
from pytest_mcpswarm.capacity.attribution import Thresholds, attribute
from pytest_mcpswarm.capacity.sampler import ResourceSampler
from pytest_mcpswarm.load.controller import START_DELAY_S, RunResult, run_workers
from pytest_mcpswarm.load.plan import RunPlan


class Sampled(Protocol):
    """What a verdict needs of a sampler: ``ResourceSampler`` (local) or ``DockerStatsSampler`` (swarm)."""

    @property
    def samples(self) -> list[dict[str, Any]]: ...

    @property
    def iface(self) -> str | None: ...

    @property
    def server_source(self) -> str | None:
        """Where the server's figures came from: ``proc``, ``metrics``, ``docker`` or None."""


def start_sampler(
    *,
    server_pids: tuple[int, ...] = (),
    metrics_url: str | None = None,
    iface: str | None = None,
    interval_s: float = 0.5,
) -> ResourceSampler:
    """A sampler whose sample times line up with the next run's t=0 (START_DELAY_S ahead)."""
    return ResourceSampler(
        server_pids=server_pids,
        metrics_url=metrics_url,
        iface=iface,
        interval_s=interval_s,
        t0=time.time() + START_DELAY_S,
    )


def attribution_of(
    result: RunResult,
    sampler: Sampled,
    *,
    link_bps: float | None = None,
    directions: tuple[str, ...] = ("tx", "rx"),
    thresholds: Thresholds | None = None,
) -> dict[str, Any]:
    """The bottleneck verdict and its side-by-side series for a finished, sampled run."""
    rows = result.snapshot.series.rows()
    first_error = next((float(r["t"]) for r in rows if r["errors"]), None)
    totals = result.snapshot.outcomes
    attribution = attribute(
        [s for s in sampler.samples if s["t"] >= 0],
        link_bps=link_bps,
        directions=directions,
        connection_failures=result.connections.get("failed", 0),
        errors_by_type=dict(totals.errors_by_type) | dict(result.connect_errors),
        first_error_s=first_error,
        thresholds=thresholds,
    )
    return attribution | {"iface": sampler.iface, "server_source": sampler.server_source}


async def observed_run(
    plan: RunPlan,
    *,
    workers: int = 1,
    server_pids: tuple[int, ...] = (),
    metrics_url: str | None = None,
    iface: str | None = None,
    link_bps: float | None = None,
    interval_s: float = 0.5,
    thresholds: Thresholds | None = None,
) -> tuple[RunResult, dict[str, Any]]:
    """Run ``plan`` on ``workers`` processes while sampling; returns the result and its ``attribution``."""
    directions: tuple[str, ...] = ("tx", "rx")
    if iface and link_bps is None:
        # A shaping qdisc caps what leaves through iface; a link speed caps each direction.
        link_bps = procfs.tc_rate_bits_per_s(iface)
        if link_bps is not None:
            directions = ("tx",)
        else:
            link_bps = procfs.link_speed_bits_per_s(iface)
    sampler = start_sampler(
        server_pids=server_pids, metrics_url=metrics_url, iface=iface, interval_s=interval_s
    )
    with sampler:
        result = await run_workers(plan, workers)
    attribution = attribution_of(
        result, sampler, link_bps=link_bps, directions=directions, thresholds=thresholds
    )
    return result, attribution
