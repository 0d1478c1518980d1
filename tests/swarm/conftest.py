"""One real deployment of the CI-sized stack for the whole session (marker ``docker``).

Preconditions, each skipped with how to get it (a failure under CI=true):
a reachable Docker engine, an active swarm whose ingress leaves VXLAN IDs 4096/4097 free
(``mcpswarm swarm init``), the offline images (``mcpswarm swarm images --offline``), and
no other mcpswarm stack holding the VXLAN IDs.  Host ports come from the stack's own
variables (MCPSWARM_WEB_PORT, MCPSWARM_WS_PORT, MCPSWARM_PROMETHEUS_PORT,
MCPSWARM_CONTROLLER_PORT).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_mcpswarm.backends.swarm import SwarmBackend
from pytest_mcpswarm.swarm import engine, routing, stack
from pytest_mcpswarm.swarm import labels as L
from pytest_mcpswarm.swarm.images import IMAGES, image_env, image_exists, project_root
from tests.conftest import require_system
from tests.swarm.live import SERVER_REPLICAS, STACK, LiveStack, settings

#: The session's last live test: it removes the stack and checks that nothing is left.
TEARDOWN_TEST = "test_teardown_leaves_nothing_labelled"
#: Modules that deploy stacks of their own from the real stack file (same VXLAN IDs and host
#: ports as the session's stack): they run after its teardown.
AFTER_TEARDOWN = ("test_stops.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Stack checks first (they need the background load), then the backend and its faults,
    then teardown, then the tests that deploy their own stacks."""
    teardown = [item for item in items if item.name == TEARDOWN_TEST]
    after = [item for item in items if item.path.name in AFTER_TEARDOWN]
    rest = [item for item in items if item not in teardown and item not in after]
    items[:] = rest + teardown + after


def _port(var: str, default: int) -> int:
    return int(os.environ.get(var) or default)


def connect_or_skip() -> Any:
    require_system(shutil.which("docker") is not None, "the docker CLI", "apt-get install docker.io")
    try:
        client = engine.connect(timeout=10)
    except Exception as exc:
        require_system(False, "the Docker engine", f"start dockerd (see docs/SWARM.md): {exc}")
        raise
    return client


@pytest.fixture(scope="session")
def live_stack() -> Iterator[LiveStack]:
    client = connect_or_skip()
    state = engine.swarm_state(client)
    require_system(state == "active", "an active swarm", "run `mcpswarm swarm init`")
    require_system(
        engine.ingress_vxlan(client) not in engine.STACK_VXLAN_IDS,
        "VXLAN IDs 4096/4097 (held by ingress)",
        "run `mcpswarm swarm init`, which moves ingress to 4098",
    )
    images = image_env(offline=True)
    missing = [images[v] for v in IMAGES if v != "MCPSWARM_BASE_IMAGE" and not image_exists(images[v])]
    require_system(not missing, f"the images {', '.join(missing)}", "run `mcpswarm swarm images --offline`")
    stack.sweep(client, log=lambda line: None)
    others = [name for name in stack.stacks(client) if name != STACK]
    require_system(
        not others,
        "the stack's VXLAN IDs (another mcpswarm stack is deployed)",
        f"remove it: mcpswarm swarm cleanup --yes --stack {others[0] if others else ''}",
    )
    docker_dir = project_root() / "docker"
    started = time.monotonic()
    stack.deploy(client, docker_dir, L.StackLabels(STACK), images, ci=True, timeout=240)
    live = LiveStack(STACK, client, docker_dir, time.monotonic() - started)
    live.web = f"http://127.0.0.1:{_port('MCPSWARM_WEB_PORT', 80)}"
    live.ws = f"ws://127.0.0.1:{_port('MCPSWARM_WS_PORT', 5555)}"
    live.prometheus = f"http://127.0.0.1:{_port('MCPSWARM_PROMETHEUS_PORT', 9090)}"
    live.controller = f"http://127.0.0.1:{_port('MCPSWARM_CONTROLLER_PORT', 8090)}"
    expected = {f"{STACK}_mcp-server.{slot}" for slot in range(1, SERVER_REPLICAS + 1)}
    asyncio.run(routing.wait_routed(f"{live.web}/mcp", expected))
    asyncio.run(routing.wait_routed(f"{live.ws}/mcp/ws", expected))
    live.routed_seconds = time.monotonic() - started - live.deploy_seconds
    print(
        f"\n[swarm] {STACK}: converged in {live.deploy_seconds:.1f} s, "
        f"routed {live.routed_seconds:.1f} s later"
    )
    try:
        yield live
    finally:
        if not live.removed:
            stack.remove(client, STACK)


@pytest.fixture(scope="session")
def backend(live_stack: LiveStack) -> Iterator[SwarmBackend]:
    """The backend adopting the session's stack (same owner: this process)."""
    b = SwarmBackend(settings(), stack_name=live_stack.name, log=lambda line: print(f"\n[swarm] {line}"))
    b.web, b.ws, b.prometheus, b.controller = (
        live_stack.web, live_stack.ws, live_stack.prometheus, live_stack.controller,
    )  # fmt: skip
    started = time.monotonic()
    b.start()
    print(f"\n[swarm] backend adopted {live_stack.name} in {time.monotonic() - started:.1f} s")
    yield b
    b.detach()  # the session's teardown test removes the stack
