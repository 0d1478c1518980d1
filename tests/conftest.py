"""Shared test fixtures: real reference servers on loopback, and system-part requirements."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

_LISTENING = re.compile(rb"listening on http://127\.0\.0\.1:(\d+)")


def require_system(ok: bool, what: str, how: str) -> None:
    """Skip when a system part is missing, with how to get it; under CI=true that is a failure."""
    if ok:
        return
    message = f"{what} is not available: {how}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {message}")
    pytest.skip(message)


def require_binary(name: str, package: str) -> str:
    path = shutil.which(name)
    require_system(path is not None, name, f"apt-get install {package}")
    assert path is not None
    return path


@dataclass
class RunningServer:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/mcp/ws"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def reference_server() -> Iterator[Callable[..., RunningServer]]:
    """Factory: ``reference_server("--delay-ms", "5")`` starts ``mcpswarm serve`` on a free port."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> RunningServer:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_mcpswarm", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        started.append(proc)
        assert proc.stdout is not None
        seen = b""
        for line in proc.stdout:
            seen += line
            match = _LISTENING.search(line)
            if match:
                return RunningServer(int(match.group(1)), proc)
        raise AssertionError(f"server did not start: {seen.decode(errors='replace')}")

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
