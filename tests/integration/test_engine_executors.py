"""Closed model, connection churn and the generator's Prometheus endpoint, against the reference server."""

from __future__ import annotations

import asyncio
import random
import socket
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pytest_mcpswarm.load.controller import RunResult, run_inprocess, run_workers
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.load.requests import MethodSpec
from pytest_mcpswarm.load.shapes import Stage
from pytest_mcpswarm.server.launch import ServerProcess

ECHO = MethodSpec("tools/call", {"name": "echo", "arguments": {"text": "hi"}}, 1.0, "text")
PING = MethodSpec("ping", None, 1.0)


def closed_plan(target: str, *, conns: int, seconds: float, **kw: Any) -> RunPlan:
    fields: dict[str, Any] = {
        "target": target,
        "methods": (ECHO,),
        "stages": (Stage(seconds, conns, 0.0),),
        "start_connections": conns,
        "timeout_s": 1.0,
        "executor": "closed",
    }
    fields.update(kw)
    return RunPlan(**fields)


def counts(result: RunResult) -> dict[str, Any]:
    outcomes = result.snapshot.outcomes
    assert outcomes.accounting_problems() == []
    return outcomes.to_dict()


@pytest.mark.parametrize("scheme", ["ws", "http"])
async def test_closed_model_keeps_one_request_in_flight_per_connection(
    reference_server: Callable[..., ServerProcess], scheme: str
) -> None:
    # 10 ms per call and one call in flight per connection: at most 2 x 100 calls/s.
    server = reference_server("--delay-ms", "10")
    result = await run_inprocess(
        closed_plan((server.ws_url if scheme == "ws" else server.url), conns=2, seconds=2.0)
    )
    c = counts(result)
    assert c["ok"] == c["scheduled"] == c["sent"]
    rps = c["ok"] / 2.0
    assert 140 <= rps <= 200, rps
    assert result.snapshot.latency.percentile(50) >= 10_000  # never faster than the service time
    assert result.connections["opened"] == 2


async def test_closed_model_think_time_paces_each_connection(
    reference_server: Callable[..., ServerProcess],
) -> None:
    server = reference_server()
    result = await run_inprocess(closed_plan(server.ws_url, conns=2, seconds=2.0, think_time_s=0.05))
    c = counts(result)
    # A call takes well under a millisecond here, then 50 ms of thought: ~20 calls/s per connection.
    assert 60 <= c["ok"] <= 82, c
    assert c["ok"] == c["scheduled"]


async def test_closed_model_timeouts_end_a_call_and_the_next_one_follows(
    reference_server: Callable[..., ServerProcess],
) -> None:
    server = reference_server("--fault", "drop:30%", "--seed", "2")
    result = await run_inprocess(closed_plan(server.ws_url, conns=1, seconds=2.0, timeout_s=0.2))
    c = counts(result)
    assert c["timeouts"] >= 1
    assert c["ok"] >= 10
    assert (result.snapshot.latency.max_us or 0) <= 200_000


@pytest.mark.parametrize("scheme", ["ws", "http"])
async def test_churn_reopens_the_connection_every_n_calls(
    reference_server: Callable[..., ServerProcess], scheme: str
) -> None:
    server = reference_server()
    plan = closed_plan(
        (server.ws_url if scheme == "ws" else server.url),
        conns=2,
        seconds=1.5,
        executor="churn",
        churn_calls=5,
    )
    result = await run_inprocess(plan)
    c = counts(result)
    assert c["errors"] == c["timeouts"] == c["not_sent"] == 0
    sessions = result.connections["opened"]
    # Each session makes exactly 5 calls, except each connection's last one, cut short by the end.
    assert 5 * (sessions - 2) <= c["ok"] <= 5 * sessions
    assert sessions >= 6
    assert result.connections["reconnects"] == 0
    assert result.connections["failed"] == 0


def _two_free_ports() -> int:
    """A port P with P + 1 free too (worker i serves P + i).

    Taken below the kernel's ephemeral range (32768+ here), where processes binding port 0,
    such as servers other tests start, never land between our check and the workers' bind.
    """
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20_000, 32_000)
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise AssertionError("no two consecutive free ports on 127.0.0.1")


def _scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


async def test_prometheus_endpoint_per_worker_is_scraped_during_the_run(
    reference_server: Callable[..., ServerProcess],
) -> None:
    server = reference_server("--fault", "error:10%", "--seed", "4")
    port = _two_free_ports()
    plan = RunPlan(
        target=server.ws_url,
        methods=(PING, ECHO),
        stages=(Stage(4.0, 4, 200.0),),
        start_connections=4,
        timeout_s=1.0,
        metrics_port=port,
    )
    task = asyncio.ensure_future(run_workers(plan, workers=2))
    scrapes: list[dict[str, list[tuple[dict[str, str], float]]]] = []
    for _ in range(100):
        await asyncio.sleep(0.1)
        try:
            scrapes = [
                await asyncio.to_thread(_scrape, f"http://127.0.0.1:{port + i}/metrics") for i in (0, 1)
            ]
        except OSError:
            continue
        if all(s.get("mcp_client_requests_total") for s in scrapes):
            break
    # A second look later in the run: counters move between folds, never backwards.
    await asyncio.sleep(1.5)
    later = [await asyncio.to_thread(_scrape, f"http://127.0.0.1:{port + i}/metrics") for i in (0, 1)]
    result = await task
    c = counts(result)

    def total(scrape: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
        return sum(v for lab, v in scrape.get(name, []) if all(lab.get(k) == x for k, x in labels.items()))

    for early, late in zip(scrapes, later, strict=True):
        assert total(late, "mcp_client_connections_active") == 2
        assert 0 < total(early, "mcp_client_requests_total") < total(late, "mcp_client_requests_total")
        ok = total(late, "mcp_client_requests_total", outcome="ok")
        errors = total(late, "mcp_client_requests_total", method="tools/call", outcome="error")
        assert ok > 0 and errors > 0
        # The histogram counts exactly the ok requests folded so far; sub-ms buckets exist.
        assert total(late, "mcp_client_request_duration_seconds_count") == ok
        les = {lab["le"] for lab, _ in late["mcp_client_request_duration_seconds_bucket"]}
        assert {"0.0001", "0.0005", "0.001", "+Inf"} <= les
        assert total(late, "mcp_client_messages_sent_total") >= ok + errors
        assert total(late, "mcp_client_bytes_sent_total") > 50 * ok
        assert total(late, "mcp_client_reconnects_total") == 0
    # Ports are free again: the endpoints closed with their workers.
    for i in (0, 1):
        with pytest.raises(OSError):
            _scrape(f"http://127.0.0.1:{port + i}/metrics")
    assert c["ok"] + c["errors"] == c["scheduled"] == 4 * 200 * 4
