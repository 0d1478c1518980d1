"""The CI-sized stack, deployed once for the session on the real swarm (tests/swarm/conftest.py).

The last test tears the stack down and checks that nothing labelled with it remains.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_mcpswarm.errors import DeployError
from pytest_mcpswarm.protocol import versions
from pytest_mcpswarm.swarm import engine, stack
from pytest_mcpswarm.swarm.routing import replica_of
from tests.swarm.live import SERVER_REPLICAS, LiveStack, full_matrix

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EXPECTED_TARGETS = {
    "mcp-server": 3,
    "mcp-clients": 6,
    "traefik": 1,
    "node-exporter": 1,
    "prometheus": 1,
    "docker": 1,
}


def prom(live: LiveStack, path: str, **params: str) -> Any:
    url = f"{live.prometheus}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def replicas(live: LiveStack) -> set[str]:
    return {f"{live.name}_mcp-server.{slot}" for slot in range(1, SERVER_REPLICAS + 1)}


def test_every_service_converged_and_healthy(live_stack: LiveStack) -> None:
    states = {s.name: s for s in stack.status(live_stack.client, live_stack.name)}
    assert set(states) == {
        "mcp-server", "mcp-client-high-load", "mcp-client-normal", "mcp-client-low-load",
        "traefik", "prometheus", "grafana", "node-exporter", "test-controller",
    }  # fmt: skip
    assert states["mcp-server"].desired == SERVER_REPLICAS
    assert states["grafana"].desired == 0  # left out of the CI override
    not_ok = {
        name: (s.running, s.desired, s.unhealthy, s.last_error)
        for name, s in states.items()
        if not s.converged
    }
    assert not not_ok
    containers = live_stack.client.containers.list(filters={"label": f"mcpswarm.stack={live_stack.name}"})
    assert len(containers) == sum(s.desired for s in states.values())
    health = {c.name: c.attrs["State"].get("Health", {}).get("Status") for c in containers}
    assert set(health.values()) == {"healthy"}, health
    for container in containers:
        labels = container.labels
        assert labels["mcpswarm.owner"] and labels["mcpswarm.keep"] == "false"


async def test_websocket_calls_through_traefik_reach_every_replica(live_stack: LiveStack) -> None:
    # One WebSocket connection stays on one replica; Traefik spreads new ones round-robin.
    seen = await asyncio.gather(*(replica_of(f"{live_stack.ws}/mcp/ws") for _ in range(4 * SERVER_REPLICAS)))
    assert set(seen) == replicas(live_stack)


async def test_erlmcp_newline_framing_through_traefik(live_stack: LiveStack) -> None:
    seen = await asyncio.gather(
        *(replica_of(f"{live_stack.ws}/mcp/ws", ws_newline=True) for _ in range(2 * SERVER_REPLICAS))
    )
    assert set(seen) <= replicas(live_stack) and seen


async def test_http_calls_through_traefik_reach_every_replica(live_stack: LiveStack) -> None:
    # Stateless revision: every request stands alone, so Traefik may send each anywhere.
    url = f"{live_stack.web}/mcp"
    seen = [await replica_of(url, version=versions.LATEST_STATELESS) for _ in range(4 * SERVER_REPLICAS)]
    assert set(seen) == replicas(live_stack)


def _post(conn: http.client.HTTPConnection, body: dict[str, Any], headers: dict[str, str]) -> tuple[Any, Any]:
    conn.request("POST", "/mcp", json.dumps(body), {
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers,
    })  # fmt: skip
    response = conn.getresponse()
    raw = response.read().decode()
    if response.getheader("Content-Type", "").startswith("text/event-stream"):
        raw = next(line[5:] for line in raw.splitlines() if line.startswith("data:"))
    return response, json.loads(raw) if raw.strip() else None


def test_http_session_sticks_to_one_replica_with_the_affinity_cookie(live_stack: LiveStack) -> None:
    # Streamable HTTP sessions live on one replica: Traefik's sticky cookie keeps a
    # cookie-aware client there (a client without cookies needs the stateless revision).
    version = versions.HANDSHAKE_VERSIONS[-1]
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(live_stack.web).netloc, timeout=10)
    client_info = {"name": "swarm-test", "version": "0"}
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": client_info}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}
    response, reply = _post(conn, init, {})
    assert response.status == 200, reply
    cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
    assert cookie.startswith("mcpswarm_affinity="), response.getheaders()
    headers = {"Cookie": cookie, "Mcp-Session-Id": response.getheader("Mcp-Session-Id", ""),
               "MCP-Protocol-Version": version}  # fmt: skip
    response, _ = _post(conn, {"jsonrpc": "2.0", "method": "notifications/initialized"}, headers)
    assert response.status == 202
    seen = set()
    for request_id in range(2, 2 + 2 * SERVER_REPLICAS):
        call = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": "sticky"}}}  # fmt: skip
        response, reply = _post(conn, call, headers)
        assert response.status == 200, reply
        seen.add(reply["result"]["structuredContent"]["replica"])
    conn.close()
    assert len(seen) == 1 and seen <= replicas(live_stack)


def test_prometheus_scrapes_every_target(live_stack: LiveStack) -> None:
    deadline = time.monotonic() + 90
    while True:
        targets = prom(live_stack, "/api/v1/targets", state="active")["data"]["activeTargets"]
        by_job: dict[str, list[str]] = {}
        for t in targets:
            by_job.setdefault(t["labels"]["job"], []).append(t["health"])
        counts = {job: len(h) for job, h in by_job.items()}
        all_up = all(h == "up" for hs in by_job.values() for h in hs)
        if counts == EXPECTED_TARGETS and all_up:
            break
        if time.monotonic() > deadline:
            detail = {t["scrapeUrl"]: (t["health"], t["lastError"]) for t in targets if t["health"] != "up"}
            hint = " (docker job: dockerd --metrics-addr on the docker_gwbridge gateway, docs/SWARM.md)"
            pytest.fail(f"targets {counts}, expected {EXPECTED_TARGETS}; not up: {detail}{hint}")
        time.sleep(3)
    up = prom(live_stack, "/api/v1/query", query="up")["data"]["result"]
    assert {r["value"][1] for r in up} == {"1"}
    assert len(up) == sum(EXPECTED_TARGETS.values())


def test_promtool_checks_the_deployed_config(live_stack: LiveStack) -> None:
    container = live_stack.container("prometheus")
    for args in (["check", "config", "/etc/prometheus/prometheus.yml"],
                 ["check", "rules", "/etc/prometheus/prometheus-alerts.yml"]):  # fmt: skip
        code, output = container.exec_run(["promtool", *args])
        assert code == 0, output.decode()
    code, output = container.exec_run(["promtool", "check", "rules", "/etc/prometheus/prometheus-alerts.yml"])
    assert b"SUCCESS: 8 rules found" in output


def _alert_rules(live: LiveStack) -> list[dict[str, Any]]:
    doc = yaml.safe_load((live.docker_dir / "prometheus-alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_every_alert_expression_evaluates(live_stack: LiveStack) -> None:
    rules = _alert_rules(live_stack)
    assert [r["alert"] for r in rules] == [
        "McpServerDown", "HighMemoryUsage", "HighCPUUsage", "HighErrorRate",
        "ConnectionLimitApproaching", "LatencySLABreach", "LoadBalancerUnhealthy", "PrometheusScrapeFailed",
    ]  # fmt: skip
    for rule in rules:
        reply = prom(live_stack, "/api/v1/query", query=rule["expr"])
        assert reply["status"] == "success", (rule["alert"], reply)
    # Prometheus itself loaded and evaluated all eight, without an evaluation error.
    deadline = time.monotonic() + 30
    while True:
        loaded = [r for g in prom(live_stack, "/api/v1/rules")["data"]["groups"] for r in g["rules"]]
        if len(loaded) == 8 and all(r.get("lastEvaluation", "").startswith("20") for r in loaded):
            break
        assert time.monotonic() < deadline, loaded
        time.sleep(2)
    assert {r["health"] for r in loaded} == {"ok"}, [(r["name"], r.get("lastError")) for r in loaded]
    # With every target up, the "down" alerts hold no series.
    for name in ("McpServerDown", "LoadBalancerUnhealthy", "PrometheusScrapeFailed"):
        expr = next(r["expr"] for r in rules if r["alert"] == name)
        assert prom(live_stack, "/api/v1/query", query=expr)["data"]["result"] == [], name


def _dashboard_exprs(docker_dir: Path) -> list[tuple[str, str]]:
    dash = json.loads((docker_dir / "grafana" / "dashboards" / "mcp-performance.json").read_text())
    return [(p["title"], t["expr"]) for p in dash["panels"] for t in p["targets"]]


def test_every_dashboard_query_returns_data(live_stack: LiveStack) -> None:
    # rate(...[1m]) needs two samples of a series: poll until each query has some.
    pending = dict.fromkeys(_dashboard_exprs(live_stack.docker_dir), "")
    deadline = time.monotonic() + 120
    while pending and time.monotonic() < deadline:
        for key in list(pending):
            reply = prom(live_stack, "/api/v1/query", query=key[1])
            assert reply["status"] == "success", (key, reply)
            if reply["data"]["result"]:
                del pending[key]
            else:
                pending[key] = "empty"
        if pending:
            time.sleep(5)
    assert not pending, f"dashboard queries without data: {list(pending)}"


def test_load_reaches_servers_through_traefik(live_stack: LiveStack) -> None:
    # The client containers' load (ws://traefik:5555) is answered by the servers.
    reply = prom(live_stack, "/api/v1/query", query='sum(mcp_client_requests_total{outcome="ok"})')
    assert float(reply["data"]["result"][0]["value"][1]) > 0
    served = prom(live_stack, "/api/v1/query", query="sum(mcpswarm_server_requests_total)")
    assert float(served["data"]["result"][0]["value"][1]) > 0


def test_controller_results_endpoint(live_stack: LiveStack) -> None:
    body = json.dumps({"replica": "r1", "ok": 1}).encode()
    request = urllib.request.Request(f"{live_stack.controller}/results/run-1/r1", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
    with urllib.request.urlopen(f"{live_stack.controller}/results/run-1", timeout=10) as response:
        assert json.loads(response.read()) == {"run": "run-1", "replicas": ["r1"]}


def test_init_is_idempotent(live_stack: LiveStack, tmp_path: Path) -> None:
    tokens = tmp_path / ".swarm-tokens"
    result = engine.init(live_stack.client, tokens_file=tokens)
    assert not result.created
    assert tokens.stat().st_mode & 0o777 == 0o600
    assert "WORKER_TOKEN=SWMTKN-" in tokens.read_text()
    assert engine.ingress_vxlan(live_stack.client) == engine.INGRESS_VXLAN_ID


#: Two stacks that cannot converge: an image no node has, and a health check that never passes.
BROKEN: dict[str, tuple[dict[str, Any], str, str]] = {
    "bad-image": ({"image": "mcpswarm/does-not-exist:none"}, "No such image", "mcpswarm swarm images"),
    "unhealthy": (
        {"image": "mcpswarm/base:bookworm", "command": ["sleep", "600"],
         "healthcheck": {"test": ["CMD", "false"], "interval": "1s", "timeout": "1s", "retries": 1}},
        "unhealthy", "health check fails",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", ["bad-image", pytest.param("unhealthy", marks=full_matrix)])  # ~50 s
def test_a_failed_deploy_is_one_line_naming_the_service_and_the_fix_and_leaves_nothing(
    live_stack: LiveStack, tmp_path: Path, case: str
) -> None:
    service, cause, fix = BROKEN[case]
    name = f"mcpswarm-{case}"
    labels = {"mcpswarm.stack": name, "mcpswarm.owner": "test:0", "mcpswarm.keep": "false"}
    compose = tmp_path / "broken.yml"
    compose.write_text(yaml.safe_dump({
        "version": "3.8",
        "services": {"broken": {**service, "labels": labels, "deploy": {
            "endpoint_mode": "dnsrr", "labels": labels, "replicas": 2,
            "restart_policy": {"condition": "on-failure", "delay": "1s", "max_attempts": 5}}}},
        "networks": {"default": {"driver": "overlay", "labels": labels}},
    }))  # fmt: skip
    started = time.monotonic()
    try:
        with pytest.raises(DeployError) as caught, stack.removed_on_failure(live_stack.client, name):
            stack.deploy_files(live_stack.client, [compose], name, {"PATH": "/usr/local/bin:/usr/bin:/bin"},
                               timeout=120)  # fmt: skip
        elapsed = time.monotonic() - started
        message = str(caught.value)
        print(f"\n[swarm] {case}: {elapsed:.1f} s: {message}")
        # Hopeless long before the timeout: a slot failed twice (restart attempts left: 5).
        assert elapsed < 90, elapsed
        assert "\n" not in message, message
        assert message.startswith(f"stack {name}: service broken cannot start"), message
        problem, _, remedy = message.partition(" — ")
        assert cause in problem and fix in remedy, message
        assert stack.leftovers(live_stack.client, name) == {kind: [] for kind in stack.KINDS}
    finally:
        stack.remove(live_stack.client, name)


def test_the_stack_runs_read_only_as_non_root_with_grafanas_secret(live_stack: LiveStack) -> None:
    client, name = live_stack.client, live_stack.name
    containers = client.containers.list(filters={"label": f"mcpswarm.stack={name}"})
    assert containers
    users = {}
    for container in containers:
        service = container.labels["com.docker.swarm.service.name"].removeprefix(f"{name}_")
        assert container.attrs["HostConfig"]["ReadonlyRootfs"], service
        code, out = container.exec_run(["id", "-u"])
        assert code == 0, out
        users[service] = int(out.decode().strip())
        code, out = container.exec_run(["sh", "-c", "touch /x 2>&1; touch /tmp/x 2>&1 && echo tmp-ok"])
        assert out.startswith(b"touch: cannot touch '/x': Read-only file system"), (service, out)
        assert (b"tmp-ok" in out) == (service != "node-exporter"), (service, out)  # it has no tmpfs
    assert 0 not in users.values(), users
    assert users["mcp-server"] == users["test-controller"] == 1000
    sockets = {
        c.labels["com.docker.swarm.service.name"]: m["RW"]
        for c in containers for m in c.attrs["Mounts"] if m["Source"] == "/var/run/docker.sock"
    }  # fmt: skip
    assert sockets == {f"{name}_traefik": False}
    # The secret: created by the deploy, labelled, wired into Grafana by name only.
    secrets = client.secrets.list(filters={"label": f"mcpswarm.stack={name}"})
    assert [s.name for s in secrets] == [f"{name}_grafana-admin-password"]
    assert secrets[0].attrs["Spec"]["Labels"]["mcpswarm.owner"]
    grafana = client.services.get(f"{name}_grafana").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
    env = dict(e.split("=", 1) for e in grafana.get("Env") or [])
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert not any("PASSWORD" in key and not key.endswith("__FILE") for key in env), env
    assert [(s["SecretName"], s["File"]["Name"]) for s in grafana["Secrets"]] == [
        (f"{name}_grafana-admin-password", "grafana_admin_password")
    ]


def test_teardown_leaves_nothing_labelled(live_stack: LiveStack) -> None:
    started = time.monotonic()
    stack.remove(live_stack.client, live_stack.name)
    live_stack.removed = True
    print(f"\n[swarm] {live_stack.name} removed in {time.monotonic() - started:.1f} s")
    assert stack.leftovers(live_stack.client, live_stack.name) == {kind: [] for kind in stack.KINDS}
    ps = subprocess.run(
        ["docker", "ps", "-a", "-q", "--filter", f"label=com.docker.stack.namespace={live_stack.name}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert ps.stdout.strip() == ""
