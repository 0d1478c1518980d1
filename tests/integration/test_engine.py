"""The load engine against the real reference server, healthy and with injected faults.

Every test checks the accounting equation exactly, and that the schedule the
engine fired is the one the load shape defines.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from pytest_mcpswarm.load.controller import RunResult, run_inprocess, run_workers
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.load.requests import MethodSpec
from pytest_mcpswarm.load.shapes import Stage
from pytest_mcpswarm.server.launch import ServerProcess

ECHO = MethodSpec("tools/call", {"name": "echo", "arguments": {"text": "hi"}}, 1.0, "text")


def plan(target: str, *, conns: int = 4, rate: float = 100.0, seconds: float = 2.0, **kw: Any) -> RunPlan:
    fields: dict[str, Any] = {
        "target": target,
        "methods": (ECHO,),
        "stages": (Stage(seconds, conns, rate),),
        "start_connections": conns,
        "timeout_s": 1.0,
    }
    fields.update(kw)
    return RunPlan(**fields)


def check_accounting(result: RunResult) -> dict[str, Any]:
    outcomes = result.snapshot.outcomes
    assert outcomes.accounting_problems() == []
    assert outcomes.scheduled == result.plan.ramp.scheduled_count()
    return outcomes.to_dict()


def server_stats(server: ServerProcess) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.base}/stats", timeout=5) as reply:
        data: dict[str, Any] = json.load(reply)
    return data


@pytest.mark.parametrize("scheme", ["ws", "http"])
@pytest.mark.parametrize("version", ["2025-11-25", "2026-07-28"])
async def test_healthy_run_answers_every_request(
    reference_server: Callable[..., ServerProcess], scheme: str, version: str
) -> None:
    server = reference_server()
    result = await run_inprocess(
        plan(server.ws_url if scheme == "ws" else server.url, protocol_version=version, payload_bytes=300)
    )
    counts = check_accounting(result)
    assert counts["ok"] == counts["scheduled"] == 800
    assert result.connections["opened"] == 4
    assert result.snapshot.latency.total_count == 800


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open fds in /proc")
async def test_a_finished_or_cancelled_run_leaves_no_file_descriptor_open(
    reference_server: Callable[..., ServerProcess],
) -> None:
    server = reference_server()
    before = sorted(os.listdir("/proc/self/fd"))
    check_accounting(await run_inprocess(plan(server.ws_url, conns=2, seconds=0.5)))
    run = asyncio.ensure_future(run_inprocess(plan(server.ws_url, conns=2, seconds=30.0)))
    await asyncio.sleep(1.5)  # connected and ticking
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    await asyncio.sleep(0.2)  # closed transports give their sockets back on the next loop turns
    assert sorted(os.listdir("/proc/self/fd")) == before


async def test_two_worker_processes_merge_exactly(reference_server: Callable[..., ServerProcess]) -> None:
    server = reference_server()
    result = await run_workers(plan(server.ws_url, conns=6, rate=50.0), workers=2)
    counts = check_accounting(result)
    assert result.workers == 2
    assert counts["ok"] == 600
    assert result.snapshot.latency.total_count == 600


async def test_service_delay_shows_in_latency(reference_server: Callable[..., ServerProcess]) -> None:
    server = reference_server("--delay-ms", "20")
    result = await run_inprocess(plan(server.ws_url, conns=2, rate=20.0))
    check_accounting(result)
    p50 = result.snapshot.latency.percentile(50)
    assert 20_000 <= p50 < 60_000  # microseconds; never faster than the service delay


async def test_stalls_show_in_p99_not_p50(reference_server: Callable[..., ServerProcess]) -> None:
    # The server freezes 300 ms every 1.5 s; requests due during a stall wait for it to end.
    server = reference_server("--fault", "stall:300ms/1500ms")
    result = await run_inprocess(plan(server.ws_url, conns=2, rate=100.0, seconds=3.0))
    check_accounting(result)
    p50, p99 = result.snapshot.latency.percentiles([50, 99])
    assert p50 < 50_000
    assert p99 > 100_000


async def test_dropped_replies_are_timeouts_never_latencies(
    reference_server: Callable[..., ServerProcess],
) -> None:
    server = reference_server("--fault", "drop:10%", "--seed", "7")
    result = await run_inprocess(plan(server.ws_url, timeout_s=0.5))
    counts = check_accounting(result)
    injected = server_stats(server)
    dropped = injected["faults"]["drop"]
    assert dropped > 0
    assert counts["timeouts"] == dropped
    assert result.snapshot.latency.total_count == counts["ok"]
    assert (result.snapshot.latency.max_us or 0) < 500_000


@pytest.mark.parametrize("scheme", ["ws", "http"])
async def test_error_replies_are_counted_by_code(
    reference_server: Callable[..., ServerProcess], scheme: str
) -> None:
    server = reference_server("--fault", "error:20%", "--seed", "3")
    result = await run_inprocess(plan(server.ws_url if scheme == "ws" else server.url))
    counts = check_accounting(result)
    injected = server_stats(server)["faults"]["error"]
    assert injected > 0
    assert counts["errors"] == injected
    assert set(counts["errors_by_type"]) == {"jsonrpc:-32603"} or all(
        k.startswith("jsonrpc:") for k in counts["errors_by_type"]
    )


async def test_malformed_replies_count_once_and_their_requests_time_out(
    reference_server: Callable[..., ServerProcess],
) -> None:
    server = reference_server("--fault", "malformed:10%", "--seed", "5")
    result = await run_inprocess(plan(server.ws_url, timeout_s=0.5))
    counts = check_accounting(result)
    injected = server_stats(server)["faults"]["malformed"]
    assert injected > 0
    assert result.protocol_events.get("protocol:malformed") == injected
    assert counts["timeouts"] == injected
    assert counts["errors"] == 0


async def test_abrupt_closes_fail_in_flight_and_reconnect(
    reference_server: Callable[..., ServerProcess],
) -> None:
    server = reference_server("--fault", "close:1%", "--seed", "11")
    result = await run_inprocess(plan(server.ws_url, conns=2, rate=200.0, seconds=3.0))
    counts = check_accounting(result)
    assert server_stats(server)["faults"]["close"] > 0
    assert counts["errors_by_type"].get("transport:closed", 0) >= 1
    assert result.connections["reconnects"] >= 1
    assert counts["ok"] > counts["scheduled"] // 2


async def test_dead_server_means_nothing_sent_and_every_request_counted(
    reference_server: Callable[..., ServerProcess],
) -> None:
    server = reference_server()
    url = server.ws_url
    server.stop()
    result = await run_inprocess(plan(url, conns=2, rate=50.0))
    counts = check_accounting(result)
    assert counts["not_sent"] == counts["scheduled"] == 200
    assert counts["not_sent_by_reason"] == {"disconnected": 200}
    assert result.connections["failed"] >= 2
    assert any(k.startswith("transport:") for k in result.connect_errors)


async def test_ramp_schedules_exactly_what_the_shape_says(
    reference_server: Callable[..., ServerProcess],
) -> None:
    server = reference_server()
    ramp_plan = RunPlan(
        target=server.ws_url,
        methods=(ECHO,),
        stages=(Stage(1.0, 6, 40.0), Stage(1.0, 6, 40.0), Stage(1.0, 1, 40.0)),
        timeout_s=1.0,
    )
    result = await run_inprocess(ramp_plan)
    counts = check_accounting(result)
    assert counts["ok"] == counts["scheduled"]
    assert result.connections["opened"] == 6
