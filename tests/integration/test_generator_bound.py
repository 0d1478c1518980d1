"""Every run checks its own generator: a starved one is flagged, a comfortable one is not."""

from __future__ import annotations

from collections.abc import Callable

from pytest_mcpswarm.load.controller import run_workers
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.load.requests import MethodSpec
from pytest_mcpswarm.load.shapes import Stage
from pytest_mcpswarm.report import document
from pytest_mcpswarm.server.launch import ServerProcess

ECHO = MethodSpec("tools/call", {"name": "echo", "arguments": {"text": "x"}}, 1.0, "text")


def _plan(target: str, conns: int, rate: float, seconds: float = 2.0) -> RunPlan:
    return RunPlan(
        target=target,
        methods=(ECHO,),
        stages=(Stage(seconds, conns, rate),),
        start_connections=conns,
        timeout_s=2.0,
        max_lateness_s=0.2,
    )


async def test_one_worker_at_an_impossible_rate_is_marked_generator_bound(
    reference_server: Callable[..., ServerProcess],
) -> None:
    server = reference_server()
    # 1,000,000 requests/s from one process: no Python generator keeps up with that.
    result = await run_workers(_plan(server.ws_url, conns=20, rate=50_000.0), workers=1)
    report = document.scenario("starved", result, profile="custom", backend="local")
    assert report["generator_bound"] is True
    # The evidence names what gave out: schedule lag, loop lag, late drops or CPU.
    assert report["generator"]["reasons"], report["generator"]
    outcomes = result.snapshot.outcomes
    assert outcomes.accounting_problems() == []


async def test_a_comfortable_run_is_not_marked(reference_server: Callable[..., ServerProcess]) -> None:
    server = reference_server()
    result = await run_workers(_plan(server.ws_url, conns=10, rate=50.0), workers=1)
    report = document.scenario("comfortable", result, profile="custom", backend="local")
    assert report["generator_bound"] is False, report["generator"]
    assert report["generator"]["reasons"] == []
    assert report["generator"]["worker_cpu"][0] < 0.5
    assert report["generator"]["loop_lag_ms"]["p50"] is not None
