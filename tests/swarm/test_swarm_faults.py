"""Faults of the swarm itself, mid-run, on the session's live stack (tests/swarm/conftest.py).

Every run must complete with exact accounting (scheduled = ok + errors + timeouts + not_sent,
and the per-second rows sum to the totals), classified errors, and its throughput back at
the scheduled rate once the fault is over.  CI runs the server scale-down/up; Traefik's
restart and Prometheus stopped are in the full matrix (``tox -e swarm-faults``).
A deploy that fails is in test_stack_live.py; Ctrl-C, SIGTERM and kill -9 in test_stops.py.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from pytest_mcpswarm.backends.swarm import SERVER_SERVICE, SwarmBackend
from pytest_mcpswarm.errors import DeployError
from pytest_mcpswarm.fixtures import ScenarioResult
from pytest_mcpswarm.swarm import routing, stack
from tests.swarm.live import PERMISSIVE, SERVER_REPLICAS, full_matrix, runner, settings, wait_started

pytestmark = [pytest.mark.docker, pytest.mark.slow]

#: An error key the engine classified: ``transport:closed``, ``jsonrpc:-32603``, ...
CLASSIFIED = re.compile(r"^(transport|protocol|jsonrpc|http):[\w.-]+$")
CLIENTS, RATE = 6, 20


def _run_with_fault(
    backend: SwarmBackend, fault: Callable[[float], None], *, duration: int
) -> tuple[ScenarioResult, dict[str, Any]]:
    """Run low-load for ``duration`` s; ``fault(start_at)`` runs in this thread once it started."""
    run = runner(backend, settings(slas=PERMISSIVE))
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(run, "low-load", clients=CLIENTS, rate=RATE, duration_s=duration, timeout_s=2)
        fault(wait_started(backend, future))
        result = future.result(timeout=300)
    return result, result.data


def _at(start_at: float, t: float) -> None:
    time.sleep(max(0.0, start_at + t - time.time()))


def _assert_exact_and_recovered(result: ScenarioResult, data: dict[str, Any], duration: int) -> None:
    rows = result.snapshot.series.rows()
    req = data["requests"]
    failed = [r["errors"] + r["timeouts"] + r["not_sent"] for r in rows]
    print(f"\n[swarm] failures per second: {failed}; errors {data['errors_by_type']}, not sent "
          f"{data['not_sent_by_reason']}, failed connects {data['connect_errors']}")  # fmt: skip
    assert req["scheduled"] == CLIENTS * RATE * duration
    assert req["scheduled"] == req["ok"] + req["errors"] + req["timeouts"] + req["not_sent"]
    per_second = {k: sum(r[k] for r in rows) for k in ("errors", "timeouts", "not_sent")}
    assert per_second == {k: req[k] for k in per_second}
    # Classified: every error, failed connect and unsent request has a kind.
    assert sum(data["errors_by_type"].values()) == req["errors"]
    assert sum(data["not_sent_by_reason"].values()) == req["not_sent"]
    for key in (*data["errors_by_type"], *data["connect_errors"]):
        assert CLASSIFIED.match(key), (data["errors_by_type"], data["connect_errors"])
    reasons = data["not_sent_by_reason"]
    assert all(re.fullmatch(r"[a-z_]+", key) for key in reasons), reasons
    # Recovered: the last 4 s are clean, at the scheduled rate.
    tail = [r for r in rows if duration - 4 <= r["t"] < duration]
    assert len(tail) == 4, rows
    for row in tail:
        assert row["errors"] + row["timeouts"] + row["not_sent"] == 0, tail
        assert row["rps"] >= 0.9 * CLIENTS * RATE, tail


def _wait_servers_routed(backend: SwarmBackend) -> None:
    stack.wait_converged(backend.client, backend.stack, timeout=120)
    expected = {f"{backend.stack}_{SERVER_SERVICE}.{i}" for i in range(1, SERVER_REPLICAS + 1)}
    asyncio.run(routing.wait_routed(backend.targets[0], expected))


def test_a_missing_image_is_one_line_before_anything_is_deployed(
    backend: SwarmBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCPSWARM_SERVER_IMAGE", "mcpswarm/no-such-server:none")
    other = SwarmBackend(settings(), stack_name="mcpswarm-no-image", log=lambda line: None)
    started = time.monotonic()
    with pytest.raises(DeployError) as caught:
        other.start()
    message = str(caught.value)
    assert time.monotonic() - started < 30
    assert "\n" not in message and "mcpswarm/no-such-server:none" in message, message
    assert "— build them: `mcpswarm swarm images`" in message, message
    assert not any(stack.leftovers(backend.client, "mcpswarm-no-image").values())


def test_servers_scaled_down_and_up_mid_run(backend: SwarmBackend) -> None:
    duration = 24

    def scale_down_and_up(start_at: float) -> None:
        _at(start_at, 5)
        stack.scale(servers, 1)
        _at(start_at, 11)
        stack.scale(servers, SERVER_REPLICAS)

    servers = f"{backend.stack}_{SERVER_SERVICE}"
    try:
        result, data = _run_with_fault(backend, scale_down_and_up, duration=duration)
    finally:
        stack.scale(servers, SERVER_REPLICAS)
    _assert_exact_and_recovered(result, data, duration)
    # The replicas scaled away took their connections with them: some requests failed.
    req = data["requests"]
    assert req["errors"] + req["timeouts"] + req["not_sent"] > 0
    assert data["swarm"]["prometheus_check"]["status"] in ("passed", "skipped"), data["swarm"]
    _wait_servers_routed(backend)


@full_matrix
def test_traefik_restarted_mid_run(backend: SwarmBackend) -> None:
    # One Traefik, stop-first (its host-mode ports allow one task per node): its connections
    # last through its 10 s stop grace period, then there is no balancer until the new task
    # routes, about 12 s measured here.  So the run is long enough to show the recovery.
    duration = 40

    def restart(start_at: float) -> None:
        _at(start_at, 5)
        stack.force_update(f"{backend.stack}_traefik")

    result, data = _run_with_fault(backend, restart, duration=duration)
    _assert_exact_and_recovered(result, data, duration)
    req = data["requests"]
    assert req["errors"] + req["timeouts"] + req["not_sent"] > 0  # every connection went through it
    _wait_servers_routed(backend)


@full_matrix
def test_prometheus_stopped_mid_run_skips_the_cross_check_with_the_reason(backend: SwarmBackend) -> None:
    duration = 10

    def stop_prometheus(start_at: float) -> None:
        _at(start_at, 2)
        stack.scale(f"{backend.stack}_prometheus", 0)

    try:
        _, data = _run_with_fault(backend, stop_prometheus, duration=duration)
    finally:
        stack.scale(f"{backend.stack}_prometheus", 1)
    req = data["requests"]
    assert req["scheduled"] == CLIENTS * RATE * duration == req["ok"], req  # the load never noticed
    check = data["swarm"]["prometheus_check"]
    assert check["status"] == "skipped", check
    assert "unreachable" in check["reason"] and backend.prometheus in check["reason"], check
    stack.wait_converged(backend.client, backend.stack, timeout=120)
