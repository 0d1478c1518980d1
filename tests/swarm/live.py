"""The live stack's handle, shared by tests/swarm/conftest.py and the tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

STACK = "mcpswarm-test"
SERVER_REPLICAS = 3


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
