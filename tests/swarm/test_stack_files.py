"""The stack files against the seed's tables, merged by the real ``docker stack config``.

These need the docker CLI only (no engine); promtool checks need Debian's prometheus.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_mcpswarm.swarm import credentials, stack
from pytest_mcpswarm.swarm import labels as L
from pytest_mcpswarm.swarm.images import image_env, project_root
from tests.conftest import require_binary, require_system

DOCKER = project_root() / "docker"
SERVICES = {
    "mcp-server", "mcp-client-high-load", "mcp-client-normal", "mcp-client-low-load",
    "traefik", "prometheus", "grafana", "node-exporter", "test-controller",
}  # fmt: skip
#: The seed's table: replicas, CPU limit/reservation, memory limit/reservation.
SEED = {
    "mcp-server": (8, "2", "1", "512M", "256M"),
    "mcp-client-high-load": (3, "2", None, "512M", None),
    "mcp-client-normal": (5, "1", None, "256M", None),
    "mcp-client-low-load": (2, "0.5", None, "128M", None),
    "traefik": (1, "1", None, "256M", None),
    "prometheus": (1, "1", None, "512M", None),
    "grafana": (1, "1", None, "512M", None),
    "node-exporter": (None, "0.5", None, "128M", None),
}
MIB = {"128M": 128 << 20, "256M": 256 << 20, "512M": 512 << 20}
SINGLE = {"traefik", "prometheus", "grafana", "test-controller"}


def stack_config(*files: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    docker = shutil.which("docker")
    require_system(docker is not None, "the docker CLI", "apt-get install docker.io")
    assert docker is not None
    cmd = [docker, "stack", "config"]
    for f in files:
        cmd += ["-c", str(DOCKER / f)]
    merged_env = {**os.environ, "MCPSWARM_STACK": "st", **(env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=merged_env, check=False)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = yaml.safe_load(proc.stdout)
    return doc


@pytest.fixture(scope="module")
def production() -> dict[str, Any]:
    return stack_config("docker-compose.swarm.yml")


@pytest.fixture(scope="module")
def ci() -> dict[str, Any]:
    return stack_config("docker-compose.swarm.yml", "docker-compose.ci.yml")


def test_production_sizes_follow_the_seed(production: dict[str, Any]) -> None:
    services = production["services"]
    assert set(services) == SERVICES
    for name, (replicas, cpu, cpu_res, mem, mem_res) in SEED.items():
        deploy = services[name]["deploy"]
        assert deploy.get("replicas") == replicas, name
        assert deploy["resources"]["limits"]["cpus"] == cpu, name
        assert int(deploy["resources"]["limits"]["memory"]) == MIB[mem], name
        reservations = deploy["resources"].get("reservations", {})
        assert reservations.get("cpus") == cpu_res, name
        assert (int(reservations["memory"]) if "memory" in reservations else None) == (
            MIB[mem_res] if mem_res else None
        ), name
    assert services["node-exporter"]["deploy"]["mode"] == "global"


def test_every_service_is_dnsrr_healthchecked_restarted_and_labelled(production: dict[str, Any]) -> None:
    for name, svc in production["services"].items():
        deploy = svc["deploy"]
        assert deploy["endpoint_mode"] == "dnsrr", name
        assert deploy["restart_policy"]["condition"] == "on-failure", name
        assert int(deploy["restart_policy"]["max_attempts"]) > 0, name
        assert svc["healthcheck"]["test"], name
        for labels in (deploy["labels"], svc["labels"]):
            assert labels["mcpswarm.stack"] == "st" and "mcpswarm.owner" in labels, name
            assert labels["mcpswarm.keep"] == "false", name


def test_published_ports_are_host_mode_on_single_replica_services_only(production: dict[str, Any]) -> None:
    published = {name for name, svc in production["services"].items() if svc.get("ports")}
    assert published == SINGLE
    for name in published:
        svc = production["services"][name]
        assert svc["deploy"]["replicas"] == 1
        assert {p["mode"] for p in svc["ports"]} == {"host"}, name
    ports = {p["published"] for name in published for p in production["services"][name]["ports"]}
    assert ports == {80, 5555, 9090, 3000, 8090}


def test_ports_and_images_come_from_the_environment() -> None:
    doc = stack_config(
        "docker-compose.swarm.yml",
        env={
            "MCPSWARM_WEB_PORT": "8081",
            "MCPSWARM_SERVER_IMAGE": "erlmcp:latest",
            "MCPSWARM_WS_PORT": "15555",
        },
    )
    traefik = doc["services"]["traefik"]
    assert {p["published"] for p in traefik["ports"]} == {8081, 15555}
    assert doc["services"]["mcp-server"]["image"] == "erlmcp:latest"


def test_placement(production: dict[str, Any]) -> None:
    services = production["services"]
    for name in ("traefik", "prometheus", "grafana", "test-controller"):
        assert services[name]["deploy"]["placement"]["constraints"] == ["node.role == manager"], name
    assert services["mcp-server"]["deploy"]["placement"]["constraints"] == [
        "node.labels.mcpswarm.servers == true"
    ]
    for name in ("mcp-client-high-load", "mcp-client-normal", "mcp-client-low-load"):
        assert services[name]["deploy"]["placement"]["constraints"] == [
            "node.labels.mcpswarm.clients == true"
        ]


def test_networks_and_volumes(production: dict[str, Any]) -> None:
    nets = production["networks"]
    assert set(nets) == {"mcp-network", "monitoring"}
    vxlan = {
        name: net["driver_opts"]["com.docker.network.driver.overlay.vxlanid_list"]
        for name, net in nets.items()
    }
    assert vxlan == {"mcp-network": "4096", "monitoring": "4097"}
    assert {net["driver"] for net in nets.values()} == {"overlay"}
    volumes = production["volumes"]
    assert set(volumes) == {
        "mcp-server-data",
        "mcp-server-logs",
        "prometheus-data",
        "grafana-data",
        "test-results",
    }
    for item in (*nets.values(), *volumes.values(), *production["configs"].values()):
        assert item["labels"]["mcpswarm.stack"] == "st"
    command = production["services"]["prometheus"]["command"]
    assert "--storage.tsdb.retention.time=7d" in command


def test_ci_override(ci: dict[str, Any]) -> None:
    services = ci["services"]
    assert services["mcp-server"]["deploy"]["replicas"] == 3
    for name in ("mcp-client-high-load", "mcp-client-normal", "mcp-client-low-load"):
        assert services[name]["deploy"]["replicas"] == 2
        assert int(services[name]["deploy"]["resources"]["reservations"]["memory"]) <= 64 << 20
    assert services["grafana"]["deploy"]["replicas"] == 0
    reserved = sum(
        float(s["deploy"]["resources"].get("reservations", {}).get("cpus", 0))
        * s["deploy"].get("replicas", 1)
        for s in services.values()
    )
    assert reserved < 2.0  # fits a 2-core single-node swarm


def test_prometheus_files_pass_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool", "prometheus")
    config = (DOCKER / "prometheus.yml").read_text()
    rules = tmp_path / "prometheus-alerts.yml"
    shutil.copy(DOCKER / "prometheus-alerts.yml", rules)
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/etc/prometheus/prometheus-alerts.yml", str(rules))
    )
    for args in (["check", "config", str(tmp_path / "prometheus.yml")], ["check", "rules", str(rules)]):
        proc = subprocess.run([promtool, *args], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = yaml.safe_load(config)
    jobs = {job["job_name"] for job in doc["scrape_configs"]}
    assert jobs == {"prometheus", "mcp-server", "mcp-clients", "traefik", "node-exporter", "docker"}
    intervals = [doc["global"]["scrape_interval"]] + [
        j.get("scrape_interval", "10s") for j in doc["scrape_configs"]
    ]
    assert {int(i.removesuffix("s")) for i in intervals} <= set(range(10, 16))


def test_grafana_provisioning_and_dashboard() -> None:
    datasource = yaml.safe_load((DOCKER / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((DOCKER / "grafana/provisioning/dashboards/mcpswarm.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dash = json.loads((DOCKER / "grafana/dashboards/mcp-performance.json").read_text())
    assert dash["refresh"] == "5s"
    titles = [p["title"] for p in dash["panels"]]
    seed_panels = (
        "Request rate", "Active connections", "Latency percentiles", "Error rate",
        "Messages sent", "Error count", "Server resource usage", "Network I/O", "Service health",
    )  # fmt: skip
    assert set(seed_panels) <= set(titles)
    uid = datasource["datasources"][0]["uid"]
    assert {p["datasource"]["uid"] for p in dash["panels"]} == {uid}


def test_dockerfiles_are_two_stage_non_root_with_base_argument() -> None:
    for name in ("Dockerfile.server", "Dockerfile.client"):
        text = (DOCKER / name).read_text()
        assert text.count("\nFROM ${BASE_IMAGE}") == 2, name
        assert "ARG BASE_IMAGE=python:3.11-slim" in text
        assert re.search(r"^USER 1000$", text, re.M), name
        assert "HEALTHCHECK" in text and "--no-index --find-links /wheels" in text


# -- security (docs/SECURITY.md) ---------------------------------------------------------------


def _rendered(tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """The stack as our deploy renders it (deploy_env), through the real ``docker stack config``."""
    env = stack.deploy_env(DOCKER, L.StackLabels("st"), image_env(offline=True))
    # A password in the environment the old stack file read must not reach the stack.
    env["MCPSWARM_GRAFANA_PASSWORD"] = "hunter2-plain-text"
    files: list[str] = []
    for f in stack.compose_files(DOCKER, ci=False):
        files += ["-c", str(f)]
    require_system(shutil.which("docker") is not None, "the docker CLI", "apt-get install docker.io")
    proc = subprocess.run(["docker", "stack", "config", *files], capture_output=True, text=True, env=env,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, yaml.safe_load(proc.stdout)


def test_grafanas_password_is_a_secret_never_plain_text(tmp_path: Path) -> None:
    text, doc = _rendered(tmp_path)
    assert "hunter2" not in text and "GF_SECURITY_ADMIN_PASSWORD:" not in text
    for name, svc in doc["services"].items():
        for key in svc.get("environment") or {}:
            if re.search(r"PASSWORD|SECRET|TOKEN", key):
                assert key.endswith("__FILE"), (name, key)  # only ever a path to a secret
    grafana = doc["services"]["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert grafana["secrets"] == [{"source": "grafana-admin-password", "target": "grafana_admin_password",
                                   "uid": "472", "gid": "0", "mode": 0o400}]  # fmt: skip
    # External: created (random, labelled) by the deploy code, never from a file in the stack.
    secret = {"name": "st_grafana-admin-password", "external": True}
    assert doc["secrets"] == {"grafana-admin-password": secret}
    assert credentials.secret_name("st") == "st_grafana-admin-password"


def test_only_traefik_mounts_the_docker_socket_read_only(production: dict[str, Any]) -> None:
    mounts = {
        name: volume
        for name, svc in production["services"].items()
        for volume in svc.get("volumes") or []
        if "docker.sock" in str(volume.get("source"))
    }
    assert set(mounts) == {"traefik"}
    assert mounts["traefik"]["read_only"] is True and mounts["traefik"]["target"] == "/var/run/docker.sock"
    assert production["services"]["traefik"]["user"].startswith("65534:")


def test_root_file_systems_are_read_only_with_a_tmpfs_except_grafanas(production: dict[str, Any]) -> None:
    for name, svc in production["services"].items():
        if name == "grafana":  # its image cannot be run here to prove which paths it writes
            assert not svc.get("read_only"), name
            continue
        assert svc.get("read_only") is True, name
        if name != "node-exporter":  # it writes nothing at all
            tmpfs = [v for v in svc.get("volumes") or [] if v["type"] == "tmpfs"]
            assert [v["target"] for v in tmpfs] == ["/tmp"], name


def test_offline_images_run_as_non_root() -> None:
    for name in ("Dockerfile.traefik", "Dockerfile.prometheus", "Dockerfile.node-exporter"):
        text = (DOCKER / "offline" / name).read_text()
        assert re.search(r"^USER 65534$", text, re.M), name
