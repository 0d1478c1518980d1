"""The live stack's handle, shared by tests/swarm/conftest.py and the tests."""

from __future__ import annotations

import os
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from pytest_mcpswarm.backends.swarm import SwarmBackend
from pytest_mcpswarm.fixtures import ScenarioRunner
from pytest_mcpswarm.options import Settings
from pytest_mcpswarm.swarm import stack

STACK = "mcpswarm-test"
SERVER_REPLICAS = 3
#: The whole swarm fault matrix (tox -e swarm-faults); CI runs a subset.
FULL_MATRIX = os.environ.get("MCPSWARM_SWARM_FAULTS") == "1"
full_matrix = pytest.mark.skipif(
    not FULL_MATRIX, reason="in the full fault matrix only: tox -e swarm-faults (MCPSWARM_SWARM_FAULTS=1)"
)
#: An SLA no fault test trips: these tests judge the accounting, not the latency.
PERMISSIVE = MappingProxyType({"low-load": "p99<60s"})


def settings(**fields: Any) -> Settings:
    return Settings(backend="swarm", swarm_ci=True, workers=2, **fields)


def runner(b: SwarmBackend, run_settings: Settings) -> ScenarioRunner:
    return ScenarioRunner(run_settings, b.targets, backend=b.name, execute=b.execute, on_result=b.annotate)


@dataclass
class LiveStack:
    name: str
    client: Any
    docker_dir: Path
    deploy_seconds: float
    web: str = ""
    ws: str = ""
    prometheus: str = ""
    controller: str = ""
    removed: bool = False
    routed_seconds: float = 0.0

    def container(self, service: str) -> Any:
        found = self.client.containers.list(
            filters={"label": f"com.docker.swarm.service.name={self.name}_{service}"}
        )
        assert found, f"no running container of {service}"
        return found[0]


def wait_started(backend: SwarmBackend, future: Future[Any], timeout: float = 180) -> float:
    """The start time of the run ``future`` runs on ``backend``, once the controller posted it."""
    deadline = time.monotonic() + timeout
    while backend.current is None:
        assert time.monotonic() < deadline and not future.done(), "the run did not start"
        time.sleep(0.1)
    return backend.current[1]


def deploy_tiny(tmp: Path, name: str, labels: dict[str, str]) -> None:
    """A one-task stack that idles, with ``labels`` on its service, containers and network."""
    doc = {
        "version": "3.8",
        "services": {"idle": {
            "image": "mcpswarm/base:bookworm", "command": ["sleep", "600"], "labels": labels,
            "deploy": {"endpoint_mode": "dnsrr", "labels": labels, "restart_policy": {"condition": "none"}},
        }},
        "networks": {"default": {"driver": "overlay", "labels": labels}},
    }  # fmt: skip
    compose = tmp / f"{name}.yml"
    compose.write_text(yaml.safe_dump(doc))
    stack.stack_deploy([compose], name, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
