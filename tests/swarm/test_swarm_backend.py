"""The swarm backend on the session's live stack (tests/swarm/conftest.py): scenarios on the
client replicas through Traefik, the exact merge, the Prometheus cross-check, a server task
killed mid-scenario, a replica that never reports, and the sweep.

These run after tests/swarm/test_stack_live.py (the backend scales the background client
services to 0) and before its teardown test, which conftest.py moves to the very end.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from pytest_mcpswarm.backends.swarm import SCENARIO_SERVICE, SERVER_SERVICE, SwarmBackend
from pytest_mcpswarm.stats.histogram import LatencyHistogram
from pytest_mcpswarm.stats.snapshot import StatsSnapshot
from pytest_mcpswarm.swarm import labels as L
from pytest_mcpswarm.swarm import routing, stack
from pytest_mcpswarm.swarm.control import ControllerClient
from tests.swarm.live import PERMISSIVE, SERVER_REPLICAS, deploy_tiny, wait_started
from tests.swarm.live import runner as _runner
from tests.swarm.live import settings as _settings

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_start_quiets_background_clients_and_routes_to_every_server(backend: SwarmBackend) -> None:
    states = {s.name: s for s in stack.status(backend.client, backend.stack)}
    assert states["mcp-client-normal"].desired == states["mcp-client-low-load"].desired == 0
    assert all(s.converged for s in states.values())
    assert backend.servers == tuple(f"{backend.stack}_mcp-server.{i}" for i in range(1, SERVER_REPLICAS + 1))
    described = backend.describe()
    assert described["backend"] == "swarm" and described["in_stack_target"] == "ws://traefik:5555/mcp/ws"


def test_scenario_runs_on_client_replicas_and_merges_exactly(backend: SwarmBackend) -> None:
    result = _runner(backend, _settings(slas=PERMISSIVE))("low-load", clients=4, rate=25, duration_s=4)
    data = result.data
    assert data["backend"] == "swarm" and data["client_replicas_reported"] == 2
    swarm = data["swarm"]
    replicas = [f"{backend.stack}_{SCENARIO_SERVICE}.{slot}" for slot in (1, 2)]
    assert swarm["reported"] == replicas
    # Merge the replicas' raw done messages again, independently of the backend.
    client = ControllerClient(backend.controller)
    messages = [client.result(swarm["run_id"], r) for r in replicas]
    parts = [StatsSnapshot.from_dict(m["snapshot"]) for m in messages]
    assert [m["gauges"]["connections"]["opened"] for m in messages] == [2, 2]  # connections 0,2 and 1,3
    requests = data["requests"]
    assert requests["scheduled"] == sum(p.outcomes.scheduled for p in parts) == 4 * 25 * 4
    assert requests["ok"] == sum(p.outcomes.ok for p in parts) == requests["scheduled"]
    assert result.snapshot.latency == LatencyHistogram.merged(p.latency for p in parts)
    check = swarm["prometheus_check"]
    assert check["status"] == "passed", check
    assert set(check["quantiles"]) == {"p50", "p95", "p99"} and check["samples"] == requests["ok"]


def test_a_server_task_killed_mid_scenario_is_replaced_and_routed_around(backend: SwarmBackend) -> None:
    duration, clients, rate = 24, 6, 20
    runner = _runner(backend, _settings(slas=PERMISSIVE))
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(runner, "low-load", clients=clients, rate=rate, duration_s=duration, timeout_s=2)
        start_at = wait_started(backend, future)
        time.sleep(max(0.0, start_at + 6 - time.time()))
        victims = backend.client.containers.list(
            filters={"label": f"com.docker.swarm.service.name={backend.stack}_{SERVER_SERVICE}"}
        )
        victim = victims[0]
        task_id = victim.labels["com.docker.swarm.task.id"]
        slot = victim.labels["com.docker.swarm.task.name"].split(".")[1]
        victim.kill()
        killed_at = time.time() - start_at
        result = future.result(timeout=240)
    data, rows = result.data, result.snapshot.series.rows()
    failed = {r["t"]: r["errors"] + r["timeouts"] + r["not_sent"] for r in rows}
    burst = [failed[t] for t in sorted(failed)]
    print(f"\n[swarm] killed {backend.stack}_{SERVER_SERVICE}.{slot} at t={killed_at:.1f} s; "
          f"failures per second: {burst}; errors {data['errors_by_type']}")  # fmt: skip
    # Before the kill: clean.  Around it: the error burst.  At the end: recovered.
    assert sum(n for t, n in failed.items() if t < int(killed_at) - 1) == 0
    assert sum(n for t, n in failed.items() if int(killed_at) - 1 <= t <= int(killed_at) + 10) > 0
    tail = [r for r in rows if duration - 5 <= r["t"] < duration]
    assert tail and all(r["errors"] + r["timeouts"] + r["not_sent"] == 0 and r["rps"] > 0 for r in tail), tail
    # Exact accounting: every scheduled request is answered, failed, timed out or not sent.
    req = data["requests"]
    assert req["scheduled"] == clients * rate * duration
    assert req["scheduled"] == req["ok"] + req["errors"] + req["timeouts"] + req["not_sent"]
    assert req["errors"] + req["timeouts"] + req["not_sent"] > 0
    per_second = {k: sum(r[k] for r in rows) for k in ("errors", "timeouts", "not_sent")}
    assert per_second == {k: req[k] for k in per_second}
    assert data["swarm"]["prometheus_check"]["status"] in ("passed", "skipped"), data["swarm"]
    # Swarm replaced the task, and Traefik routes to every replica again.
    deadline = time.monotonic() + 120
    while True:
        service = backend.client.services.get(f"{backend.stack}_{SERVER_SERVICE}")
        running = [t for t in service.tasks(filters={"desired-state": "running"})
                   if t["Status"]["State"] == "running"]  # fmt: skip
        if len(running) == SERVER_REPLICAS and task_id not in {t["ID"] for t in running}:
            break
        assert time.monotonic() < deadline, running
        time.sleep(1)
    expected = {f"{backend.stack}_{SERVER_SERVICE}.{i}" for i in range(1, SERVER_REPLICAS + 1)}
    asyncio.run(routing.wait_routed(backend.targets[0], expected))


def _failing_run(backend: SwarmBackend, during_run: Callable[[], None], grace: float, **fields: Any) -> str:
    """Run low-load with ``fields``, call ``during_run()`` once it started; the failure message."""
    runner = _runner(backend, _settings(slas=PERMISSIVE))
    errors: list[str] = []

    def fail(message: str) -> Any:
        errors.append(message)
        raise AssertionError(message)

    runner.fail = fail
    backend.report_grace_s = grace
    try:
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(runner, "low-load", **fields)
            wait_started(backend, future)
            during_run()
            with pytest.raises(AssertionError):
                future.result(timeout=180)
    finally:
        backend.report_grace_s = 60
    assert len(errors) == 1
    return errors[0]


def test_a_replica_that_never_reports_is_an_error_naming_it(backend: SwarmBackend) -> None:
    # Scaled away mid-run: the task gets SIGTERM, keeps measuring, and is killed 10 s later
    # (the stop grace period), before its 14 s run ends.
    def scale_down() -> None:  # on a fresh read: the run's own update changed the version
        backend.update_service(SCENARIO_SERVICE, lambda service: service.scale(1))

    message = _failing_run(backend, scale_down, 5, clients=2, rate=5, duration_s=14, timeout_s=1)
    assert "never reported their results" in message, message
    named = [f"{SCENARIO_SERVICE}.{slot}" for slot in (1, 2) if f"{SCENARIO_SERVICE}.{slot} never" in message]
    assert len(named) == 1, message


def test_a_client_replica_killed_mid_run_is_named_not_merged(backend: SwarmBackend) -> None:
    # kill -9: Swarm restarts the task; the replacement finds the start passed and says so.
    def kill_one() -> None:
        time.sleep(1)
        victims = backend.client.containers.list(
            filters={"label": f"com.docker.swarm.service.name={backend.stack}_{SCENARIO_SERVICE}"}
        )
        print(f"\n[swarm] killing {victims[0].name} ({len(victims)} running)")
        victims[0].kill()

    message = _failing_run(backend, kill_one, 20, clients=2, rate=5, duration_s=6, timeout_s=1)
    assert re.search(
        rf"client replica {backend.stack}_{SCENARIO_SERVICE}\.[12]: this replica started", message
    )
    assert "replaces a task that died mid-run" in message, message


# -- the sweep ---------------------------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)  # fmt: skip
    return int(proc.stdout)


def _gone(client: Any, name: str, timeout: float = 60) -> bool:
    ns = {"label": f"com.docker.stack.namespace={name}"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not (client.services.list(filters=ns) or client.containers.list(all=True, filters=ns)
                or client.networks.list(filters=ns)):  # fmt: skip
            return True
        time.sleep(1)
    return False


def _rm_stack(client: Any, name: str) -> bool:
    """``docker stack rm`` a stack this test deployed, labelled by us or not; True once gone.

    ``stack rm`` leaves a network when it races the tasks' shutdown ("has active endpoints"),
    as ``stack.remove`` knows; that goes by our label, which the unlabelled stack has not.
    """
    subprocess.run(["docker", "stack", "rm", name], capture_output=True, check=False)
    ns = {"label": f"com.docker.stack.namespace={name}"}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not (client.services.list(filters=ns) or client.containers.list(all=True, filters=ns)):
            for net in client.networks.list(filters=ns):
                with contextlib.suppress(docker.errors.APIError):  # endpoints may still be leaving
                    net.remove()
            if not client.networks.list(filters=ns):
                return True
        time.sleep(1)
    return False


def test_sweep_removes_only_labelled_stacks_of_dead_owners_not_kept(
    backend: SwarmBackend, tmp_path: Path
) -> None:
    host = L.this_owner().rpartition(":")[0]
    dead = f"{host}:{_dead_pid()}"
    stacks = {
        "mcpswarm-orphan": {L.STACK: "mcpswarm-orphan", L.OWNER: dead, L.KEEP: "false"},
        "mcpswarm-kept": {L.STACK: "mcpswarm-kept", L.OWNER: dead, L.KEEP: "true"},
        "mcpswarm-elsewhere": {L.STACK: "mcpswarm-elsewhere", L.OWNER: "another-host:1", L.KEEP: "false"},
        "unlabelled": {"purpose": "not ours"},
    }
    client = backend.client
    try:
        for name, labels in stacks.items():
            deploy_tiny(tmp_path, name, labels)
        removed = stack.sweep(client, log=lambda line: None)
        assert removed == ["mcpswarm-orphan"]
        assert not any(stack.leftovers(client, "mcpswarm-orphan").values())
        for name in ("mcpswarm-kept", "mcpswarm-elsewhere", "unlabelled"):
            assert client.services.list(filters={"label": f"com.docker.stack.namespace={name}"}), name
        assert backend.stack in stack.stacks(client)  # this process's stack: its owner lives
    finally:
        assert all([_rm_stack(client, name) for name in stacks])  # a list: remove every one


def test_reaper_removes_the_stack_when_its_owner_is_killed(backend: SwarmBackend, tmp_path: Path) -> None:
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    name = "mcpswarm-reaped"
    try:
        host = L.this_owner().rpartition(":")[0]
        deploy_tiny(tmp_path, name, {L.STACK: name, L.OWNER: f"{host}:{owner.pid}", L.KEEP: "false"})
        reaper = subprocess.Popen(
            [sys.executable, "-m", "pytest_mcpswarm.swarm.reaper", name, str(owner.pid)]
        )
        time.sleep(1)
        assert reaper.poll() is None and name in stack.stacks(backend.client)
        owner.kill()  # kill -9: no teardown runs in the owner
        owner.wait()
        assert reaper.wait(timeout=120) == 0
        assert not any(stack.leftovers(backend.client, name).values())
        assert _gone(backend.client, name)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        _rm_stack(backend.client, name)
