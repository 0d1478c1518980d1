"""The Docker engine and the swarm: reach dockerd, ``swarm init`` idempotently, label nodes.

Replaces the rig's ``init_swarm.sh``.  Node labels decide placement: MCP servers go where
``mcpswarm.servers == true``, clients where ``mcpswarm.clients == true``.  With worker
nodes, the workers get both labels; on a single-node swarm the manager gets them, so the
same stack file fits both.
"""

from __future__ import annotations

import gc
import importlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pytest_mcpswarm.errors import EngineUnavailableError, SwarmInactiveError

NODE_LABELS: Final = ("mcpswarm.servers", "mcpswarm.clients")
#: The seed's VXLAN IDs of mcp-network and monitoring; swarm init gives ingress the first (4096).
STACK_VXLAN_IDS: Final = ("4096", "4097")
INGRESS_VXLAN_ID: Final = "4098"
_VXLAN_OPT: Final = "com.docker.network.driver.overlay.vxlanid_list"
TOKENS_FILE: Final = ".swarm-tokens"


def connect(timeout: float = 30.0) -> Any:
    """A docker SDK client that answered a ping."""
    try:
        # By name: mypy run from the checkout would take the docker/ directory for the SDK.
        docker: Any = importlib.import_module("docker")
    except ImportError:  # pragma: no cover - docker is a dependency
        raise EngineUnavailableError("the docker SDK is not installed", fix="pip install docker") from None
    client = None
    problem = ""
    try:
        client = docker.DockerClient.from_env(timeout=int(timeout))
        client.ping()
    except Exception as exc:  # the SDK raises DockerException, requests' errors or OSError
        problem = str(exc)
    if problem:
        if client is not None:
            client.close()
        # The SDK leaks its socket when API version negotiation fails in its constructor:
        # finalise it now (the traceback that held it is gone) rather than warn at some
        # later, unrelated garbage collection.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
        raise EngineUnavailableError(f"cannot reach the Docker engine: {problem}")
    return client


def swarm_state(client: Any) -> str:
    """``active``, ``inactive``, ``pending``, ``error`` or ``locked``."""
    return str(client.info()["Swarm"]["LocalNodeState"])


def require_manager(client: Any) -> None:
    info = client.info()["Swarm"]
    if info["LocalNodeState"] != "active":
        raise SwarmInactiveError(f"this engine is not in a swarm (state: {info['LocalNodeState']})")
    if not info.get("ControlAvailable"):
        raise SwarmInactiveError(
            "this engine is a swarm worker; stacks are deployed from a manager",
            fix="run mcpswarm swarm on a manager node",
        )


@dataclass(frozen=True)
class InitResult:
    created: bool
    manager_addr: str
    tokens_file: Path
    labelled: tuple[str, ...]


def init(client: Any, *, advertise_addr: str = "127.0.0.1", tokens_file: Path | None = None) -> InitResult:
    """Initialise the swarm unless active, label nodes, write the join tokens (mode 0600)."""
    created = False
    if swarm_state(client) != "active":
        client.swarm.init(advertise_addr=advertise_addr, listen_addr=f"{advertise_addr}:2377")
        created = True
    require_manager(client)
    client.swarm.reload()
    tokens = client.swarm.attrs["JoinTokens"]
    managers = client.info()["Swarm"].get("RemoteManagers") or []
    addr = managers[0]["Addr"] if managers else f"{advertise_addr}:2377"
    move_ingress(client)
    path = tokens_file or Path(TOKENS_FILE)
    write_tokens(path, tokens["Worker"], tokens["Manager"], addr)
    return InitResult(created, addr, path, label_nodes(client))


def write_tokens(path: Path, worker: str, manager: str, addr: str) -> None:
    """Join commands, readable by the owner only (the file is created 0600, never wider)."""
    text = (
        "# Docker Swarm join tokens: keep secret.\n"
        f"WORKER_TOKEN={worker}\nMANAGER_TOKEN={manager}\nMANAGER_ADDR={addr}\n"
        f"# docker swarm join --token $WORKER_TOKEN {addr}\n"
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def label_nodes(client: Any) -> tuple[str, ...]:
    """Give the placement labels to the workers (or, without workers, to the managers).

    Returns the hostnames that were changed; nodes that already carry a label keep it.
    """
    nodes = [n for n in client.nodes.list() if n.attrs["Status"]["State"] == "ready"]
    workers = [n for n in nodes if n.attrs["Spec"]["Role"] == "worker"]
    changed = []
    for node in workers or nodes:
        spec = dict(node.attrs["Spec"])
        labels = dict(spec.get("Labels") or {})
        missing = {k: "true" for k in NODE_LABELS if k not in labels}
        if missing:
            spec["Labels"] = {**labels, **missing}
            node.update(spec)
            changed.append(str(node.attrs["Description"]["Hostname"]))
    return tuple(changed)


def check_ready(client: Any) -> None:
    """A manager of an active swarm whose ingress leaves VXLAN IDs 4096/4097 free."""
    require_manager(client)
    if ingress_vxlan(client) in STACK_VXLAN_IDS:
        raise SwarmInactiveError(
            f"the ingress network holds VXLAN ID {ingress_vxlan(client)}, which the stack's networks need",
            fix="run `mcpswarm swarm init` (it moves ingress to VXLAN ID 4098)",
        )


def ingress_vxlan(client: Any) -> str | None:
    for net in client.networks.list(filters={"name": "ingress"}):
        if net.attrs.get("Ingress"):
            return str((net.attrs.get("Options") or {}).get(_VXLAN_OPT, ""))
    return None


def move_ingress(client: Any) -> bool:
    """Give the ingress network VXLAN ID 4098 when it holds one of the stack's (4096/4097).

    ``swarm init`` gives ingress VXLAN ID 4096, which the stack's mcp-network needs.  The
    stack publishes host-mode ports only, so ingress carries nothing of ours; recreating it
    is Docker's documented way to customise it, and needs no service to publish through it.
    """
    current = ingress_vxlan(client)
    if current is None or current not in STACK_VXLAN_IDS:
        return False
    import time

    net = client.networks.get("ingress")
    ipam = net.attrs.get("IPAM") or {}
    net.remove()
    for _ in range(50):  # removal is asynchronous in the swarm's allocator
        if ingress_vxlan(client) is None:
            break
        time.sleep(0.2)
    docker: Any = importlib.import_module("docker")
    pools = [
        docker.types.IPAMPool(subnet=c["Subnet"], gateway=c.get("Gateway"))
        for c in ipam.get("Config") or []
        if c.get("Subnet")
    ]
    client.networks.create(
        "ingress", driver="overlay", ingress=True, options={_VXLAN_OPT: INGRESS_VXLAN_ID},
        ipam=docker.types.IPAMConfig(pool_configs=pools) if pools else None,
    )  # fmt: skip
    return True


def gwbridge_gateway(client: Any) -> str | None:
    """This node's docker_gwbridge gateway, where CI's dockerd serves --metrics-addr."""
    try:
        net = client.networks.get("docker_gwbridge")
    except Exception:
        return None
    for config in net.attrs.get("IPAM", {}).get("Config") or []:
        if config.get("Gateway"):
            return str(config["Gateway"])
    return None


def leave(client: Any) -> None:
    """Leave the swarm (force: a single manager cannot leave otherwise)."""
    if swarm_state(client) == "active":
        client.swarm.leave(force=True)
