"""A stack's lifecycle: deploy and wait until it converged, status, removal, leftovers.

``docker stack deploy`` runs as a subprocess (the SDK has no stack support) with
``--resolve-image never`` (local images, no registry look-ups).  Everything else goes
through the docker SDK.  A service converged when its running tasks equal its desired
tasks: in swarm mode a task with a health check reports ``running`` only once healthy,
and containers on this node are also checked for ``healthy`` directly.

A deploy that cannot converge fails before its timeout when a service is hopeless: a slot
(a replica, or a node of a global service) whose restart attempts are used up, or whose
tasks failed twice since the wait began (a missing image, a health check that fails).  The
``DeployError`` is one line naming the service, its last task error and the fix; with
``remove_on_failure`` nothing of the stack is left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
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
        "MCPSWARM_DOCKER_GID": docker_gid(),
        **(extra or {}),
    }


def docker_gid() -> str:
    """The group of this node's Docker socket: Traefik runs as nobody in that group.

    ``$MCPSWARM_DOCKER_GID`` wins (managers whose socket groups differ); 0 when unknown.
    """
    given = os.environ.get("MCPSWARM_DOCKER_GID")
    if given:
        return given
    try:
        return str(os.stat("/var/run/docker.sock").st_gid)
    except OSError:
        return "0"


def stack_deploy(files: Sequence[Path], name: str, env: Mapping[str, str]) -> None:
    cmd = ["docker", "stack", "deploy", "--resolve-image", "never", "--prune"]
    for f in files:
        cmd += ["-c", str(f)]
    proc = subprocess.run([*cmd, name], env=dict(env), capture_output=True, text=True, check=False)
    if proc.returncode:
        raise DeployError(f"docker stack deploy {name} failed: {(proc.stderr or proc.stdout).strip()}")


def scale(service: str, replicas: int) -> None:
    """``docker service scale --detach SERVICE=N``: nothing but the replica count changes.

    Not the SDK's ``Service.scale``: its update rewrites the task template with the API's
    defaults (``DNSConfig: {}``, ``StopGracePeriod: 10s``), which Swarm takes for a new task
    spec, so it replaces *every* task, the ones that stay included, in a rolling update.
    """
    cmd = ["docker", "service", "scale", "--detach", f"{service}={replicas}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise DeployError(f"`{' '.join(cmd)}` failed: {_one_line(proc.stderr or proc.stdout)}")


def force_update(service: str) -> None:
    """``docker service update --force --detach SERVICE``: replace its tasks (a restart)."""
    cmd = ["docker", "service", "update", "--force", "--detach", service]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise DeployError(f"`{' '.join(cmd)}` failed: {_one_line(proc.stderr or proc.stdout)}")


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


def _containers(client: Any, filters: dict[str, str], *, all: bool = False) -> list[tuple[str, str | None]]:
    """``(name, health)`` of the containers ``filters`` selects, from one list call.

    Not ``client.containers.list``: it inspects each container after listing them all, and one
    that is removed in between (during a teardown, a restart) makes it raise ``NotFound``.
    Health comes from the status line: ``Up 5 seconds (health: starting)``.
    """
    found = []
    for c in client.api.containers(all=all, filters=filters):
        status = str(c.get("Status") or "")
        health = None
        if "(" in status and status.endswith(")"):
            health = status.rsplit("(", 1)[1][:-1].removeprefix("health: ")
        found.append((str((c.get("Names") or [c["Id"]])[0]).lstrip("/"), health))
    return found


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
    for name, health in _containers(client, {"label": f"com.docker.swarm.service.id={service.id}"}):
        if health not in (None, "healthy"):
            unhealthy.append(f"{name}: {health}")
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


#: Task states that end a task in failure (a rejected task never started: no image, no node).
FAILED_STATES: Final = ("failed", "rejected")
#: New failures of one slot, since the wait began, after which a service is hopeless.
FAILURES_PER_SLOT: Final = 2


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def hopeless(service: Any, old_tasks: Collection[str] = ()) -> str:
    """Why ``service`` cannot converge ("" while it may): a slot out of restarts or failing again.

    ``old_tasks`` are task IDs that existed before the wait began; their failures do not count.
    """
    policy = service.attrs["Spec"]["TaskTemplate"].get("RestartPolicy") or {}
    max_attempts = int(policy.get("MaxAttempts") or 0)  # 0: unlimited
    tasks = [t for t in service.tasks() if t["ID"] not in old_tasks]
    by_slot: dict[object, list[dict[str, Any]]] = {}
    for task in tasks:
        by_slot.setdefault(task.get("Slot") or task.get("NodeID"), []).append(task)
    for slot, slot_tasks in by_slot.items():
        failed = [t for t in slot_tasks if t["Status"]["State"] in FAILED_STATES]
        if any(t["Status"]["State"] == "running" for t in slot_tasks) or not failed:
            continue
        # Swarm starts a task, then restarts it max_attempts times: max_attempts + 1 in all.
        used_up = max_attempts > 0 and len(failed) > max_attempts
        if not used_up and len(failed) < FAILURES_PER_SLOT:
            continue
        last = max(failed, key=lambda t: t["Status"].get("Timestamp", ""))
        status = last["Status"]
        why = "its restart attempts are used up" if used_up else f"{len(failed)} of its tasks failed"
        detail = _one_line(status.get("Err") or status.get("Message") or "")
        return f"slot {slot}: {why}; last task {last['ID'][:12]} {status['State']}: {detail}"
    return ""


def _fix_for(stack: str, service: str, reason: str) -> str:
    full = f"{stack}_{service}"
    if "No such image" in reason or ("image" in reason and "not found" in reason):
        return (
            "build or load the image on every node (`mcpswarm swarm images`, --offline without a "
            "registry), or set its MCPSWARM_*_IMAGE variable (docs/SWARM.md)"
        )
    if "unhealthy" in reason:
        return (
            f"its health check fails: read `docker service logs {full}`; the check is the service's "
            "healthcheck in docker/docker-compose.swarm.yml (MCPSWARM_SERVER_HEALTHCHECK for mcp-server)"
        )
    return f"read `docker service ps --no-trunc {full}` and `docker service logs {full}`"


def wait_converged(
    client: Any, stack: str, *, timeout: float = 300.0, poll: float = 2.0,
    progress: Callable[[list[ServiceState]], None] | None = None,
) -> list[ServiceState]:  # fmt: skip
    """Until every service runs all its tasks, healthy; DeployError (one line) names the failures.

    Raised at ``timeout``, or as soon as a service is ``hopeless``.
    """
    deadline = time.monotonic() + timeout
    old_tasks = {t["ID"] for svc in services(client, stack) for t in svc.tasks()}
    states: list[ServiceState] = []
    while True:
        states = status(client, stack)
        if progress is not None:
            progress(states)
        if states and all(s.converged for s in states):
            return states
        for svc in services(client, stack):
            name = _short(svc.name, stack)
            state = next((s for s in states if s.name == name), None)
            reason = "" if state is None or state.converged else hopeless(svc, old_tasks)
            if reason:
                raise DeployError(
                    f"stack {stack}: service {name} cannot start ({state.running if state else 0}/"
                    f"{state.desired if state else '?'} running; {reason})",
                    fix=_fix_for(stack, name, reason),
                )
        if time.monotonic() >= deadline:
            break
        time.sleep(poll)
    failing = [s for s in states if not s.converged] or states
    detail = "; ".join(
        f"{s.name}: {s.running}/{s.desired} running"
        + (f", unhealthy {', '.join(s.unhealthy)}" if s.unhealthy else "")
        + (f", last task {_one_line(s.last_error)}" if s.last_error else "")
        for s in failing
    )
    first = failing[0].name if failing else ""
    raise DeployError(
        f"stack {stack} did not converge within {timeout:.0f} s: {detail or 'no services'}",
        fix=_fix_for(stack, first, detail) if first else None,
    )


def deploy(
    client: Any, docker_dir: Path, stack: L.StackLabels, images: Mapping[str, str], *, ci: bool,
    timeout: float = 300.0, extra_env: Mapping[str, str] | None = None,
    progress: Callable[[list[ServiceState]], None] | None = None, remove_on_failure: bool = False,
) -> list[ServiceState]:  # fmt: skip
    """Deploy (or update) the stack, its Grafana secret first, and wait until it converged."""
    from pytest_mcpswarm.swarm import credentials

    env = deploy_env(docker_dir, stack, images, extra_env)
    with removed_on_failure(client, stack.stack, remove_on_failure):
        credentials.ensure(client, stack)
        return deploy_files(client, compose_files(docker_dir, ci=ci), stack.stack, env,
                            timeout=timeout, progress=progress)  # fmt: skip


def deploy_files(
    client: Any, files: Sequence[Path], name: str, env: Mapping[str, str], *, timeout: float = 300.0,
    progress: Callable[[list[ServiceState]], None] | None = None,
) -> list[ServiceState]:  # fmt: skip
    """``docker stack deploy`` of ``files``, then ``wait_converged``."""
    stack_deploy(files, name, env)
    return wait_converged(client, name, timeout=timeout, progress=progress)


@contextlib.contextmanager
def removed_on_failure(client: Any, stack: str, enabled: bool = True) -> Iterator[None]:
    """Remove everything labelled with ``stack`` when the block raises a ``DeployError``."""
    try:
        yield
    except DeployError:
        if enabled:
            remove(client, stack)
        raise


def leftovers(client: Any, stack: str) -> dict[str, list[str]]:
    """Every resource still labelled with this stack, by kind (empty lists when clean)."""
    label = {"label": f"{L.STACK}={stack}"}
    found = {
        "services": [s.name for s in client.services.list(filters=label)],
        "containers": [name for name, _ in _containers(client, label, all=True)],
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
            for secret in client.secrets.list(filters=label):  # external (credentials.py): ours to remove
                _quietly(secret.remove)
            if volumes:
                for vol in client.volumes.list(filters=label):
                    _quietly(vol.remove)
            rest = leftovers(client, stack)
            done = not any(rest[k] for k in ("networks", "configs", "secrets"))
            if done and not (volumes and rest["volumes"]):
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


def _labelled_resources(client: Any) -> list[dict[str, str]]:
    """The labels of every resource carrying ``mcpswarm.stack``, services first."""
    label = {"label": L.STACK}
    found = [s.attrs["Spec"].get("Labels") or {} for s in client.services.list(filters=label)]
    for collection in (client.networks, client.volumes, client.configs, client.secrets):
        for item in collection.list(filters=label):
            found.append(item.attrs.get("Labels") or item.attrs.get("Spec", {}).get("Labels") or {})
    return found


def orphans(client: Any) -> list[str]:
    """Stacks (or what is left of them) whose owner process died on this host, not marked keep.

    Found by label on every kind of resource, so the networks, volumes or secrets of a half
    removed stack count too.  Another host's stacks and unlabelled ones are never orphans.
    """
    owners: dict[str, dict[str, str]] = {}
    for found in _labelled_resources(client):
        if found.get(L.STACK):
            owners.setdefault(found[L.STACK], found)
    return sorted(
        name for name, found in owners.items()
        if found.get(L.KEEP) != "true" and L.owner_alive(found.get(L.OWNER, "")) is False
    )  # fmt: skip


def sweep(client: Any, *, log: Callable[[str], None] = print) -> list[str]:
    """Remove stacks whose owner process died on this host and that are not marked keep."""
    removed = []
    for name in orphans(client):
        log(f"removing stack {name}: its owner process is gone")
        remove(client, name)
        removed.append(name)
    return removed
