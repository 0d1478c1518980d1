"""Shared test fixtures: real reference servers on loopback, and system-part requirements."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator

import pytest

from pytest_mcpswarm.server.launch import ServerProcess


def require_system(ok: bool, what: str, how: str) -> None:
    """Skip when a system part is missing, with how to get it; under CI=true that is a failure."""
    if ok:
        return
    message = f"{what} is not available: {how}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {message}")
    pytest.skip(message)


#: How to get the engine's optional C reply path (``pytest_mcpswarm/load/_replies.c``).
ACCELERATOR_HOW = "apt-get install gcc, then reinstall the project (pip install -e .)"


def require_binary(name: str, package: str) -> str:
    path = shutil.which(name)
    require_system(path is not None, name, f"apt-get install {package}")
    assert path is not None
    return path


@pytest.fixture
def reference_server() -> Iterator[Callable[..., ServerProcess]]:
    """Factory: ``reference_server("--delay-ms", "5")`` starts ``mcpswarm serve`` on a free port."""
    started: list[ServerProcess] = []

    def start(*args: str) -> ServerProcess:
        server = ServerProcess(args)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
