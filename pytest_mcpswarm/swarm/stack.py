"""A stack's lifecycle: deploy and wait until it converged, status, removal, leftovers.

``docker stack deploy`` runs as a subprocess (the SDK has no stack support) with
``--resolve-image never`` (local images, no registry look-ups).  Everything else goes
through the docker SDK.  A service converged when its running tasks equal its desired
tasks: in swarm mode a task with a health check reports ``running`` only once healthy,
and containers on this node are also checked for ``healthy`` directly.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pytest_mcpswarm.errors import DeployError
from pytest_mcpswarm.swarm import labels as L

NAMESPACE: Final = "com.docker.stack.namespace"
#: Files whose content names the stack's swarm configs (configs are immutable).
CONFIG_FILES: Final = (
    "traefik.yml", "prometheus.yml", "prometheus-alerts.yml", "prometheus-entrypoint.sh",
    "grafana/provisioning/datasources/prometheus.yml", "grafana/provisioning/dashboards/mcpswarm.yml",
    "grafana/dashboards/mcp-performance.json",
)  # fmt: skip
KINDS: Final = ("services", "containers", "networks", "volumes", "configs", "secrets")


def compose_files(docker_dir: Path, *, ci: bool) -> list[Path]:
    files = [docker_dir / "docker-compose.swarm.yml"]
    if ci:
        files.append(docker_dir / "docker-compose.ci.yml")
    return files


def config_id(docker_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in CONFIG_FILES:
        digest.update(name.encode() + b"\0" + (docker_dir / name).read_bytes())
    return digest.hexdigest()[:12]


def deploy_env(
    docker_dir: Path, stack: L.StackLabels, images: Mapping[str, str], extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment ``docker stack deploy`` interpolates the compose files with."""
    return {
        **os.environ,
        **images,
        **stack.env(),
        "MCPSWARM_CONFIG_ID": config_id(docker_dir),
        **(extra or {}),
    }


def stack_deploy(files: Sequence[Path], name: str, env: Mapping[str, str]) -> None:
    cmd = ["docker", "stack", "deploy", "--resolve-image", "never", "--prune"]
    for f in files:
        cmd += ["-c", str(f)]
    proc = subprocess.run([*cmd, name], env=dict(env), capture_output=True, text=True, check=False)
    if proc.returncode:
        raise DeployError(f"docker stack deploy {name} failed: {(proc.stderr or proc.stdout).strip()}")


@dataclass(frozen=True)
class ServiceState:
    name: str
    mode: str
    desired: int
    running: int
    unhealthy: tuple[str, ...]
    image: str
    ports: tuple[str, ...]
    last_error: str

    @property
    def converged(self) -> bool:
        return self.running == self.desired and not self.unhealthy


def _short(name: str, stack: str) -> str:
    return name.removeprefix(f"{stack}_")


def services(client: Any, stack: str) -> list[Any]:
    return list(client.services.list(filters={"label": f"{NAMESPACE}={stack}"}, status=True))


def _last_task_error(service: Any) -> str:
    tasks = sorted(service.tasks(), key=lambda t: t["Status"].get("Timestamp", ""), reverse=True)
    for task in tasks:
        status = task["Status"]
        if status.get("Err") or task["DesiredState"] != "running" or status["State"] != "running":
            detail = status.get("Err") or status.get("Message") or ""
            return f"task {task['ID'][:12]} {status['State']}: {detail}".strip()
    return ""


def service_state(client: Any, service: Any, stack: str) -> ServiceState:
    attrs = service.attrs
    spec = attrs["Spec"]
    status = attrs.get("ServiceStatus") or {}
    mode = "global" if "Global" in spec["Mode"] else "replicated"
    desired = int(status.get("DesiredTasks", spec["Mode"].get("Replicated", {}).get("Replicas", 0)))
    running = int(status.get("RunningTasks", 0))
    unhealthy = []
    for container in client.containers.list(filters={"label": f"com.docker.swarm.service.id={service.id}"}):
        health = container.attrs["State"].get("Health", {}).get("Status")
        if health not in (None, "healthy"):
            unhealthy.append(f"{container.name}: {health}")
    ports = tuple(
        f"{p.get('PublishedPort')}->{p.get('TargetPort')}/{p.get('Protocol')} ({p.get('PublishMode')})"
        for p in spec.get("EndpointSpec", {}).get("Ports") or []
    )
    image = spec["TaskTemplate"]["ContainerSpec"]["Image"].split("@", 1)[0]
    converged = running == desired and not unhealthy
    return ServiceState(
        _short(spec["Name"], stack), mode, desired, running, tuple(unhealthy), image, ports,
        "" if converged else _last_task_error(service),
    )  # fmt: skip


def status(client: Any, stack: str) -> list[ServiceState]:
    return sorted((service_state(client, s, stack) for s in services(client, stack)), key=lambda s: s.name)


def wait_converged(
    client: Any, stack: str, *, timeout: float = 300.0, poll: float = 2.0,
    progress: Callable[[list[ServiceState]], None] | None = None,
) -> list[ServiceState]:  # fmt: skip
    """Until every service runs all its tasks, healthy; on timeout, DeployError names the failures."""
    deadline = time.monotonic() + timeout
    states: list[ServiceState] = []
    while True:
        states = status(client, stack)
        if progress is not None:
            progress(states)
        if states and all(s.converged for s in states):
            return states
        if time.monotonic() >= deadline:
            break
        time.sleep(poll)
    failing = [s for s in states if not s.converged] or states
    detail = "; ".join(
        f"{s.name}: {s.running}/{s.desired} running"
        + (f", unhealthy {', '.join(s.unhealthy)}" if s.unhealthy else "")
        + (f", last task {s.last_error}" if s.last_error else "")
        for s in failing
    )
    raise DeployError(f"stack {stack} did not converge within {timeout:.0f} s: {detail or 'no services'}")


def deploy(
    client: Any, docker_dir: Path, stack: L.StackLabels, images: Mapping[str, str], *, ci: bool,
    timeout: float = 300.0, extra_env: Mapping[str, str] | None = None,
    progress: Callable[[list[ServiceState]], None] | None = None,
) -> list[ServiceState]:  # fmt: skip
    """Deploy (or update) the stack and wait until it converged."""
    env = deploy_env(docker_dir, stack, images, extra_env)
    stack_deploy(compose_files(docker_dir, ci=ci), stack.stack, env)
    return wait_converged(client, stack.stack, timeout=timeout, progress=progress)


def leftovers(client: Any, stack: str) -> dict[str, list[str]]:
    """Every resource still labelled with this stack, by kind (empty lists when clean)."""
    label = {"label": f"{L.STACK}={stack}"}
    found = {
        "services": [s.name for s in client.services.list(filters=label)],
        "containers": [c.name for c in client.containers.list(all=True, filters=label)],
        "networks": [n.name for n in client.networks.list(filters=label)],
        "volumes": [v.name for v in client.volumes.list(filters=label)],
        "configs": [c.name for c in client.configs.list(filters=label)],
        "secrets": [s.name for s in client.secrets.list(filters=label)],
    }
    return {kind: found[kind] for kind in KINDS}


def remove(client: Any, stack: str, *, timeout: float = 120.0, volumes: bool = True) -> None:
    """``docker stack rm`` and wait until services, containers and networks are really gone.

    Then remove the stack's volumes (``stack rm`` keeps them) unless ``volumes=False``.
    """
    subprocess.run(["docker", "stack", "rm", stack], capture_output=True, check=False)
    label = {"label": f"{L.STACK}={stack}"}
    deadline = time.monotonic() + timeout
    while True:
        rest = leftovers(client, stack)
        # stack rm may leave configs and networks if it raced with task shutdown: retry them.
        if not rest["services"] and not rest["containers"]:
            for net in client.networks.list(filters=label):
                _quietly(net.remove)
            for cfg in client.configs.list(filters=label):
                _quietly(cfg.remove)
            if volumes:
                for vol in client.volumes.list(filters=label):
                    _quietly(vol.remove)
            rest = leftovers(client, stack)
            if not any(rest[k] for k in ("networks", "configs")) and not (volumes and rest["volumes"]):
                return
        if time.monotonic() >= deadline:
            left = ", ".join(f"{k}: {' '.join(v)}" for k, v in rest.items() if v)
            raise DeployError(f"stack {stack} was not fully removed within {timeout:.0f} s ({left})")
        time.sleep(1.0)


def _quietly(action: Callable[[], object]) -> None:
    with contextlib.suppress(Exception):  # in use or already gone: the next round tells
        action()


def stacks(client: Any) -> dict[str, dict[str, str]]:
    """Stacks we labelled: name -> the labels of one of its services."""
    found: dict[str, dict[str, str]] = {}
    for service in client.services.list(filters={"label": L.STACK}):
        service_labels = service.attrs["Spec"].get("Labels") or {}
        found.setdefault(service_labels[L.STACK], dict(service_labels))
    return found


def sweep(client: Any, *, log: Callable[[str], None] = print) -> list[str]:
    """Remove stacks whose owner process died on this host and that are not marked keep."""
    removed = []
    for name, found in stacks(client).items():
        if found.get(L.KEEP) == "true" or L.owner_alive(found.get(L.OWNER, "")) is not False:
            continue
        log(f"removing stack {name}: its owner {found.get(L.OWNER)} is gone")
        remove(client, name)
        removed.append(name)
    return removed
