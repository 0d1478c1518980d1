"""The swarm control plane on loopback, without Docker: orders, the start handshake, the merge.

Two client replicas run ``replica.run_order`` in this process against a real reference
server and the real results endpoint (``controller_entry``) on loopback; the controller side
is the swarm backend's code (``control.start_when_ready``, ``control.collect``) and the
merge is ``load.controller.merge_done``.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pytest_mcpswarm.backends.swarm import SwarmBackend
from pytest_mcpswarm.errors import EngineUnavailableError, SwarmInactiveError
from pytest_mcpswarm.load.controller import merge_done
from pytest_mcpswarm.load.exporter import GeneratorMetrics
from pytest_mcpswarm.load.plan import RunPlan, plan_from_profile
from pytest_mcpswarm.load.profiles import get_profile, override
from pytest_mcpswarm.options import Settings
from pytest_mcpswarm.server.launch import ServerProcess
from pytest_mcpswarm.stats.histogram import LatencyHistogram
from pytest_mcpswarm.stats.snapshot import StatsSnapshot
from pytest_mcpswarm.swarm import control, controller_entry, crosscheck, replica
from pytest_mcpswarm.swarm.control import ControllerClient, Order, RunControlError
from pytest_mcpswarm.swarm.crosscheck import bucket_index


@pytest.fixture
def results_endpoint(tmp_path: Path) -> Iterator[str]:
    handler = type("Handler", (controller_entry.ResultsHandler,), {"root": tmp_path, "runs": {}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _plan(target: str, clients: int = 5, rate: float = 40.0, duration_s: float = 2.0) -> RunPlan:
    profile = override(get_profile("low-load"), clients=clients, rate=rate, duration_s=duration_s)
    return plan_from_profile(profile, target=target, timeout_s=5.0)


def test_orders_round_trip_through_the_environment_and_share_every_connection() -> None:
    plan = _plan("ws://traefik:5555/mcp/ws", clients=7)
    env = control.order_env(plan, "run-1", 3, "http://test-controller:8090")
    shares = []
    for slot in (1, 2, 3):
        order = control.order_from_env(
            {**env, control.ENV_SLOT: str(slot), control.ENV_REPLICA: f"svc.{slot}"}
        )
        assert order is not None and order.plan == plan and order.replica == f"svc.{slot}"
        shares.append(order.share().connections)
    assert sorted(c for share in shares for c in share) == list(range(7))
    assert shares == [tuple(range(7))[k::3] for k in range(3)]  # the local workers' deal
    assert control.order_from_env({}) is None
    bad = Order(plan, "run-1", 3, 4, "svc.4", "http://x")
    with pytest.raises(control.UsageError, match=r"outside 1\.\.3"):
        bad.share()


def test_the_start_waits_for_every_replica_and_names_the_missing_one(results_endpoint: str) -> None:
    client = ControllerClient(results_endpoint)
    client.ready("run-2", "svc.1")
    with pytest.raises(RunControlError, match=r"svc\.2 not ready within 1 s \(task 2 is pending\)"):
        control.start_when_ready(client, "run-2", ["svc.1", "svc.2"], timeout=1,
                                 describe=lambda missing: "task 2 is pending")  # fmt: skip
    assert client.state("run-2") == {"run": "run-2", "ready": ["svc.1"], "start_at": None}
    client.ready("run-2", "svc.2")
    start_at = control.start_when_ready(client, "run-2", ["svc.1", "svc.2"], timeout=5, lead_s=0.5)
    assert client.state("run-2")["start_at"] == start_at and start_at > time.time()


def test_a_replica_that_never_reports_is_an_error_naming_it(results_endpoint: str) -> None:
    client = ControllerClient(results_endpoint)
    client.post_result("run-3", "svc.1", {"type": "done", "replica": "svc.1"})
    with pytest.raises(RunControlError, match=r"svc\.2 never reported"):
        control.collect(client, "run-3", ["svc.1", "svc.2"], until_wall=time.time() + 1)
    client.post_result("run-3", "svc.2", {"type": "error", "replica": "svc.2", "message": "refused"})
    with pytest.raises(RunControlError, match=r"client replica svc\.2: refused"):
        control.collect(client, "run-3", ["svc.1", "svc.2"], until_wall=time.time() + 1)


def test_two_replicas_run_their_shares_from_one_start_and_merge_exactly(
    results_endpoint: str, reference_server: Callable[..., ServerProcess]
) -> None:
    server = reference_server()
    plan = _plan(server.ws_url, clients=5, rate=40.0, duration_s=2.0)
    orders = [Order(plan, "run-4", 2, slot, f"svc.{slot}", results_endpoint) for slot in (1, 2)]
    stop = asyncio.Event()
    posted: list[dict[str, Any]] = []

    async def replicas() -> None:
        loop = asyncio.get_running_loop()
        tasks = [asyncio.ensure_future(replica.run_order(o, 0, stop)) for o in orders]
        client = ControllerClient(results_endpoint)
        start_at = await loop.run_in_executor(
            None, lambda: control.start_when_ready(client, "run-4", ["svc.1", "svc.2"], timeout=30)
        )
        assert start_at > time.time()
        messages = await loop.run_in_executor(
            None, lambda: control.collect(client, "run-4", ["svc.1", "svc.2"], until_wall=start_at + 30)
        )
        posted.extend(messages)
        stop.set()
        await asyncio.gather(*tasks)

    asyncio.run(replicas())
    assert [m["replica"] for m in posted] == ["svc.1", "svc.2"]
    merged = merge_done(replace(plan, start_at=1.0), posted)
    assert merged.workers == 2
    parts = [StatsSnapshot.from_dict(m["snapshot"]) for m in posted]
    total = merged.snapshot.outcomes
    assert total.scheduled == sum(p.outcomes.scheduled for p in parts) == plan.ramp.scheduled_count(0, 2)
    assert total.ok == total.scheduled and total.errors == total.timeouts == total.not_sent == 0
    assert merged.snapshot.latency.total_count == sum(p.latency.total_count for p in parts)
    assert merged.connections["opened"] == 5


def test_replica_metrics_are_the_engines_exporter_labelled_with_run_and_replica() -> None:
    metrics = GeneratorMetrics()
    metrics.observe("ping", np.array([40, 900, 3000], dtype=np.int64))
    idle = SimpleNamespace(snapshot=StatsSnapshot(), active=0, reconnects=0, messages_sent=3, bytes_sent=9)
    metrics.publish(idle)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(replica.Labelled(metrics, {"run": "run-5", "replica": "svc.1"}))
    server = replica.serve_http(lambda: generate_latest(registry), 0)
    port = server.server_address[1]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert response.read() == b"ok\n"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    buckets = [
        s for s in families["mcp_client_request_duration_seconds"].samples if s.name.endswith("_bucket")
    ]
    assert buckets and all(s.labels["run"] == "run-5" and s.labels["replica"] == "svc.1" for s in buckets)
    assert {s.labels["le"]: s.value for s in buckets}["0.001"] == 2


def test_cross_check_is_skipped_with_the_reason_when_prometheus_is_unreachable() -> None:
    latency = LatencyHistogram()
    latency.record_many([1000, 2000, 3000])
    check = crosscheck.cross_check("http://127.0.0.1:9", "run-6", latency, wait_s=1)
    assert check["status"] == "skipped"
    assert "unreachable" in check["reason"] and "127.0.0.1:9" in check["reason"]


def test_bucket_index_follows_prometheus_le() -> None:
    assert bucket_index(0.00005) == 0 and bucket_index(0.000051) == 1
    assert bucket_index(0.001) == 5 and bucket_index(99.0) == len(crosscheck.BUCKETS_S)


# -- the backend's preconditions: one-line errors that name the fix --------------------------


def test_an_unreachable_engine_is_a_one_line_error_naming_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    backend = SwarmBackend(Settings(backend="swarm"), log=lambda line: None)
    with pytest.raises(EngineUnavailableError) as caught:
        backend.start()
    message = str(caught.value)
    assert "cannot reach the Docker engine" in message and "start dockerd" in message
    assert "\n" not in message
    backend.stop()  # nothing was deployed: a no-op


class _InactiveEngine:
    def info(self) -> dict[str, Any]:
        return {"Swarm": {"LocalNodeState": "inactive"}}


def test_an_inactive_swarm_is_initialised_only_when_asked_or_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_mcpswarm.swarm import engine

    monkeypatch.setattr(engine, "connect", _InactiveEngine)
    monkeypatch.delenv("CI", raising=False)
    inits: list[object] = []

    def init(client: object, **kwargs: object) -> None:
        inits.append(client)
        raise RuntimeError("stop here: init was called")

    monkeypatch.setattr(engine, "init", init)
    with pytest.raises(SwarmInactiveError) as caught:
        SwarmBackend(Settings(backend="swarm"), log=lambda line: None).start()
    assert "not in a swarm (state: inactive)" in str(caught.value)
    assert "mcpswarm swarm init" in str(caught.value) and "--mcpswarm-swarm-init" in str(caught.value)
    assert inits == []
    for settings, env in (
        (Settings(backend="swarm", swarm_init=True), {}),
        (Settings(backend="swarm"), {"CI": "true"}),
    ):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        with pytest.raises(RuntimeError, match="init was called"):
            SwarmBackend(settings, log=lambda line: None).start()
    assert len(inits) == 2
