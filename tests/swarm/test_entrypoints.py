"""What runs inside the containers, exercised on loopback without Docker."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.load.exporter import GeneratorMetrics
from pytest_mcpswarm.server.launch import ServerProcess
from pytest_mcpswarm.swarm import controller_entry, engine, healthcheck
from pytest_mcpswarm.swarm import labels as L
from pytest_mcpswarm.swarm.client_entry import ClientSettings, run_load, settings_from_env
from pytest_mcpswarm.swarm.replica import metrics_registry


def test_client_accepts_the_go_simulators_variables() -> None:
    env = {
        "CLIENT_TYPE": "high-load", "TARGET_SERVERS": "ws://traefik:5555/mcp/ws,ws://other:5555/mcp/ws",
        "CLIENT_COUNT": "7", "MESSAGE_RATE": "12.5", "DURATION_SECONDS": "30", "METRICS_PORT": "9999",
    }  # fmt: skip
    settings = settings_from_env(env)
    assert (settings.client_type, settings.target, settings.clients, settings.rate) == (
        "high-load", "ws://traefik:5555/mcp/ws", 7, 12.5,
    )  # fmt: skip
    assert (settings.duration_s, settings.metrics_port) == (30.0, 9999)
    plan = settings.plan()
    assert plan.target == "ws://traefik:5555/mcp/ws" and plan.ramp.max_connections == 7
    defaults = settings_from_env({})
    assert (defaults.client_type, defaults.metrics_port, defaults.duration_s) == ("normal", 8888, 0.0)
    assert defaults.plan().duration_s == defaults.chunk_s  # 0 = until stopped, run in chunks


@pytest.mark.parametrize(
    ("name", "value"), [("CLIENT_COUNT", "many"), ("MESSAGE_RATE", "0"), ("METRICS_PORT", "x")]
)
def test_client_rejects_bad_values_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(UsageError, match=name):
        settings_from_env({name: value})


async def test_client_until_stopped_serves_the_engines_exporter_counting_on_across_chunks(
    reference_server: Callable[..., ServerProcess],
) -> None:
    server = reference_server()
    config = ClientSettings(client_type="low-load", target=server.ws_url, clients=2, rate=20.0, chunk_s=1.0,
                            replica="svc.1")  # fmt: skip
    metrics = GeneratorMetrics()
    stop = asyncio.Event()
    task = asyncio.ensure_future(run_load(config, metrics, stop))
    await asyncio.sleep(4.0)  # 1 s chunks, each with its own engine
    stop.set()
    await task
    registry = metrics_registry(metrics, {"client_type": "low-load", "replica": "svc.1"})
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    ok = sum(s.value for s in families["mcp_client_requests"].samples
             if s.name.endswith("_total") and s.labels["outcome"] == "ok")  # fmt: skip
    assert ok > 2 * 20 * 1  # more than one chunk: the counters did not restart with each engine
    counts = [s for s in families["mcp_client_request_duration_seconds"].samples if s.name.endswith("_count")]
    assert sum(s.value for s in counts) == ok
    errors = {s.labels["error_type"]: s.value for s in families["mcp_client_messages_errors"].samples
              if s.name.endswith("_total")}  # fmt: skip
    assert errors == {"timeout": 0}
    labelled = [s for f in families.values() if f.name.startswith("mcp_client") for s in f.samples]
    assert labelled and all(s.labels["client_type"] == "low-load" for s in labelled)
    assert "process_resident_memory_bytes" in {s.name for f in families.values() for s in f.samples}


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[str]:
    controller_entry.ResultsHandler.root = tmp_path
    server = ThreadingHTTPServer(("127.0.0.1", 0), controller_entry.ResultsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_controller_stores_and_lists_results(controller: str, tmp_path: Path) -> None:
    assert healthcheck.check(f"{controller}/health")
    assert not healthcheck.check(f"{controller}/nothing-here")
    request = urllib.request.Request(f"{controller}/results/run-7/client.1", data=b'{"n": 1}', method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 201
    assert json.loads((tmp_path / "run-7" / "client.1.json").read_text()) == {"n": 1}
    with urllib.request.urlopen(f"{controller}/results/run-7", timeout=5) as response:
        assert json.loads(response.read()) == {"run": "run-7", "replicas": ["client.1"]}
    bad = urllib.request.Request(f"{controller}/results/run-7/x", data=b"not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(bad, timeout=5)
    caught.value.close()
    assert caught.value.code == 400


def test_join_tokens_are_written_owner_only(tmp_path: Path) -> None:
    path = tmp_path / ".swarm-tokens"
    path.write_text("old")
    path.chmod(0o644)
    engine.write_tokens(path, "SWMTKN-w", "SWMTKN-m", "127.0.0.1:2377")
    assert path.stat().st_mode & 0o777 == 0o600
    assert "WORKER_TOKEN=SWMTKN-w" in path.read_text()


def test_owner_labels() -> None:
    labels = L.StackLabels("s1", keep=True).env()
    assert labels["MCPSWARM_STACK"] == "s1" and labels["MCPSWARM_KEEP"] == "true"
    assert L.owner_alive(L.this_owner()) is True
    assert L.owner_alive("another-host:1") is None
    host = L.this_owner().rpartition(":")[0]
    assert L.owner_alive(f"{host}:{2**22 + 12345}") is False  # above pid_max: never alive
    assert os.getpid() > 0
