"""Every fault mode of the reference server, on WebSocket and Streamable HTTP, through the load engine.

Each test checks the accounting equation exactly and compares what the engine
observed with what the server says it injected (``/stats``).  Where one fault
maps to one outcome the comparison is an equality; where it does not (a close
fails every request in flight; a stall or a slow read costs time, not
requests) the test says so and checks what does hold.

Time windows (``@START-END``) are measured from the server's start
(``fault_clock_unix`` in /stats); ``run_offset`` converts them to run time.
"""

from __future__ import annotations

import gc
import json
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from pytest_mcpswarm.load.controller import RunResult, run_inprocess
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.load.requests import MethodSpec
from pytest_mcpswarm.load.shapes import Stage
from pytest_mcpswarm.server.launch import ServerProcess
from pytest_mcpswarm.stats.recovery import recovery_time

ECHO = MethodSpec("tools/call", {"name": "echo", "arguments": {"text": "hi"}}, 1.0, "text")
SCHEMES = ["ws", "http"]
Start = Callable[..., ServerProcess]


def target(server: ServerProcess, scheme: str) -> str:
    return server.ws_url if scheme == "ws" else server.url


def open_plan(url: str, *, conns: int = 4, rate: float = 100.0, seconds: float = 2.0, **kw: Any) -> RunPlan:
    fields: dict[str, Any] = {
        "target": url,
        "methods": (ECHO,),
        "stages": (Stage(seconds, conns, rate),),
        "start_connections": conns,
        "timeout_s": 0.5,
    }
    fields.update(kw)
    return RunPlan(**fields)


def churn_plan(url: str, *, conns: int = 4, seconds: float = 3.0, **kw: Any) -> RunPlan:
    # No think time: with one, the engine may record a negative latency and end the run (reported).
    return open_plan(url, conns=conns, rate=0.0, seconds=seconds, executor="churn", churn_calls=10, **kw)


def accounting(result: RunResult) -> dict[str, Any]:
    """The outcome counters, after checking that every scheduled request ended exactly once."""
    outcomes = result.snapshot.outcomes
    assert outcomes.accounting_problems() == []
    if result.plan.executor == "open":
        assert outcomes.scheduled == result.plan.ramp.scheduled_count()
    counts = outcomes.to_dict()
    assert counts["scheduled"] == counts["ok"] + counts["errors"] + counts["timeouts"] + counts["not_sent"]
    return counts


def server_stats(server: ServerProcess) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.base}/stats", timeout=5) as reply:
        data: dict[str, Any] = json.load(reply)
    return data


def run_offset(result: RunResult, stats: dict[str, Any]) -> float:
    """Server fault-clock seconds at the run's t=0."""
    return float(result.plan.start_at - stats["fault_clock_unix"])


# -- delay and stall: time, not requests ----------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_delay_slows_every_call_and_counts_each(start: Start, scheme: str) -> None:
    server = start("--fault", "delay:fixed:20ms")
    result = await run_inprocess(open_plan(target(server, scheme), conns=2, rate=50.0, seconds=1.5))
    counts = accounting(result)
    assert counts["ok"] == counts["scheduled"] == 150
    assert server_stats(server)["faults"]["delay"] == counts["ok"]  # one delay per tools/call
    p50 = result.snapshot.latency.percentile(50)
    assert 20_000 <= p50 < 60_000


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_stall_500ms_every_2s_shows_in_p99_not_p50(start: Start, scheme: str) -> None:
    server = start("--fault", "stall:500ms/2s")
    result = await run_inprocess(
        open_plan(target(server, scheme), conns=2, rate=100.0, seconds=4.5, timeout_s=2.0)
    )
    counts = accounting(result)
    assert counts["ok"] == counts["scheduled"] == 900  # a stall delays replies; it loses none
    stats = server_stats(server)
    stalls = stats["faults"]["stall"]
    assert stalls >= 2
    assert stats["fault_seconds"]["stall"] == pytest.approx(0.5 * stalls)
    # A quarter of the time is stalled: requests due then wait up to 500 ms, the rest are fast.
    p50, p99 = result.snapshot.latency.percentiles([50, 99])
    assert p50 < 50_000
    assert 300_000 < p99 < 600_000
    rows = result.snapshot.series.rows()
    per_second = [r["p99_ms"] for r in rows if r["p99_ms"] is not None]
    assert max(per_second) > 300 and min(per_second) < 50  # stalled seconds and clean ones


# -- reply faults: one fault, one outcome ---------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_drop_malformed_error_map_one_to_one(start: Start, scheme: str) -> None:
    server = start("--fault", "drop:4%", "--fault", "malformed:4%", "--fault", "error:4%", "--seed", "5")
    result = await run_inprocess(open_plan(target(server, scheme)))
    counts = accounting(result)
    injected = server_stats(server)["faults"]
    assert min(injected["drop"], injected["malformed"], injected["error"]) > 0
    # A dropped reply and a malformed one both leave their request unanswered: it times out.
    assert counts["timeouts"] == injected["drop"] + injected["malformed"]
    # A malformed reply is also one protocol event, never an error outcome.
    assert result.protocol_events == {"protocol:malformed": injected["malformed"]}
    assert counts["errors_by_type"] == {"jsonrpc:-32603": injected["error"]}
    assert counts["ok"] == counts["scheduled"] - sum(injected[k] for k in ("drop", "malformed", "error"))
    assert result.snapshot.latency.total_count == counts["ok"]
    assert (result.snapshot.latency.max_us or 0) < 500_000  # timeouts are never latencies


async def test_close_fails_in_flight_requests_and_reconnects_ws(start: Start) -> None:
    # Not 1:1 with requests: a close fails every request in flight on that connection (at least
    # the one whose reply it replaced).  It is 1:1 with reconnects, since the window ends early.
    server = start("--fault", "close:2%@0s-1.5s", "--seed", "11")
    result = await run_inprocess(open_plan(server.ws_url, seconds=2.5))
    counts = accounting(result)
    closes = server_stats(server)["faults"]["close"]
    assert closes > 0
    assert set(counts["errors_by_type"]) == {"transport:closed"}
    assert counts["errors"] >= closes
    assert result.connections["reconnects"] == closes
    assert set(counts["not_sent_by_reason"]) <= {"disconnected"}
    assert counts["timeouts"] == 0


async def test_close_fails_the_request_it_hits_http(start: Start) -> None:
    server = start("--fault", "close:2%@0s-1.5s", "--seed", "11")
    result = await run_inprocess(open_plan(server.url, seconds=2.5))
    counts = accounting(result)
    closes = server_stats(server)["faults"]["close"]
    assert closes > 0
    transport_errors = sum(n for k, n in counts["errors_by_type"].items() if k.startswith("transport:"))
    assert transport_errors == closes  # HTTP/1.1: one request in flight per connection


# -- connection faults: refuse, version, slow reads ----------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_refused_connections_count_one_to_one_and_recover(start: Start, scheme: str) -> None:
    # Only new connections are refused, so the clients churn: connect, 10 calls, close, repeat.
    server = start("--fault", "refuse:100%@1s-2s")
    result = await run_inprocess(churn_plan(target(server, scheme), conns=8))
    gc.collect()  # a connection the engine leaked (the WS bug) must fail this test, not the next one
    counts = accounting(result)
    stats = server_stats(server)
    refused = stats["faults"]["refuse"]
    assert refused > 0
    failed = result.connections["failed"]
    assert sum(result.connect_errors.values()) == failed
    transport = {"transport:reset", "transport:refused", "transport:closed"}
    if scheme == "ws":
        assert failed == refused  # one connection per attempt: 1:1
        assert counts["errors"] == 0  # closed model: nothing is issued before the handshake is done
    else:
        # The HTTP pool also opens connections ahead of need; one refused before it carried a
        # request costs nothing and is rightly not a failure, so here it is "at most".  And a
        # session's first call leaves while notifications/initialized is still in flight, so it
        # may take a second connection, which the server accepts and then resets: that call was
        # sent and is rightly an error (CI saw 2 of them once).  Each such error costs one refusal.
        assert failed > 0
        assert failed + counts["errors"] <= refused
        assert set(counts["errors_by_type"]) <= transport
    assert set(result.connect_errors) <= transport
    assert counts["timeouts"] == counts["not_sent"] == 0
    # Connections come back after the window: the last whole second is served again.
    rows = result.snapshot.series.rows()
    end_of_window = 2.0 - run_offset(result, stats)
    assert any(r["rps"] > 0 for r in rows if r["t"] >= end_of_window)


@pytest.mark.parametrize(("scheme", "version"), [("ws", "2025-11-25"), ("http", "2026-07-28")])
async def test_wrong_protocol_version_fails_each_handshake_once(
    start: Start, scheme: str, version: str
) -> None:
    # initialize answers protocolVersion 2099-01-01; server/discover lists only 2099-01-01.
    server = start("--fault", "version:2099-01-01@1s-2s")
    result = await run_inprocess(churn_plan(target(server, scheme), protocol_version=version))
    counts = accounting(result)
    wrong = server_stats(server)["faults"]["version"]
    assert wrong > 0
    # The engine counts a failed handshake as a connect error (no request was scheduled on it).
    assert result.connect_errors == {"protocol:version": wrong}
    assert result.connections["failed"] == wrong
    assert counts["errors"] == counts["timeouts"] == 0
    assert counts["ok"] > 0


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_slow_reads_back_up_the_client(start: Start, scheme: str) -> None:
    # 8 KB/s per connection against ~12-30 KB/s offered: the server's socket buffers fill, the
    # client's writes queue behind them, and latency grows.  No request is lost for it.
    server = start("--fault", "slowread:8KB/s")
    result = await run_inprocess(open_plan(target(server, scheme), timeout_s=2.0))
    counts = accounting(result)
    stats = server_stats(server)
    assert stats["faults"]["slowread"] > 0
    assert stats["fault_seconds"]["slowread"] > 1.0
    assert counts["errors"] == counts["not_sent"] == 0
    assert result.snapshot.latency.percentile(50) > 10_000  # a healthy loopback p50 is under 2 ms


# -- recovery -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "fault"),
    [("ws", "drop:100%"), ("http", "error:100%"), ("http", "drop:100%")],
)
async def test_throughput_recovers_after_a_fault_window(start: Start, scheme: str, fault: str) -> None:
    server = start("--fault", f"{fault}@2.5s-3.5s")
    result = await run_inprocess(open_plan(target(server, scheme), seconds=6.5))
    counts = accounting(result)
    stats = server_stats(server)
    kind = fault.split(":", maxsplit=1)[0]
    injected = stats["faults"][kind]
    assert injected > 0
    if kind == "drop":
        assert counts["timeouts"] == injected
    else:
        assert counts["errors_by_type"] == {"jsonrpc:-32603": injected}
    offset = run_offset(result, stats)
    rows = result.snapshot.series.rows()
    # Loopback p99 is a few ms and jitters by a few ms on a shared 2-core VM: 5 ms of slack still
    # tells a recovered second from one with 500 ms timeouts or 100% errors.
    end = result.snapshot.series.elapsed_s
    rec = recovery_time(rows, 2.5 - offset, 3.5 - offset, run_end_s=end, p99_slack_ms=5.0)
    assert rec.recovered, (rec, rows)
    assert rec.recovery_s is not None and rec.recovery_s <= 2.0, (rec, rows)
    assert rec.recovered_at_s is not None
    after = [r["rps"] for r in rows if rec.recovered_at_s <= r["t"] and r["t"] + 1 <= end]
    assert after and min(after) >= 0.9 * rec.baseline.rps, (rec, rows)


@pytest.fixture
def start(reference_server: Start) -> Start:
    return reference_server
