"""``mcpswarm swarm monitor`` driven under tmux against the session's live stack."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import require_binary
from tests.swarm.live import LiveStack

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def tmux_session(live_stack: LiveStack) -> Iterator[tuple[str, str]]:
    tmux = require_binary("tmux", "tmux")
    name = f"mcpswarm-monitor-{time.monotonic_ns()}"
    # Rich reads COLUMNS/LINES before the terminal's size: let the 200x60 pane decide.
    command = (
        f"env -u COLUMNS -u LINES {sys.executable} -m pytest_mcpswarm swarm monitor "
        f"--stack {live_stack.name} --prometheus {live_stack.prometheus}"
    )
    subprocess.run([tmux, "new-session", "-d", "-s", name, "-x", "200", "-y", "60", command], check=True)
    try:
        yield tmux, name
    finally:
        subprocess.run([tmux, "kill-session", "-t", name], capture_output=True, check=False)


def _screen(tmux: str, name: str) -> str:
    proc = subprocess.run(
        [tmux, "capture-pane", "-p", "-t", name], capture_output=True, text=True, check=False
    )
    return proc.stdout


def _wait_for(tmux: str, name: str, ok: Callable[[str], bool], within: float, what: str) -> str:
    deadline = time.monotonic() + within
    screen = ""
    while time.monotonic() < deadline:
        screen = _screen(tmux, name)
        if ok(screen):
            return screen
        time.sleep(0.5)
    pytest.fail(f"monitor screen never showed {what} within {within:.0f} s:\n{screen}")


def test_monitor_shows_the_stack_and_answers_its_keys(
    tmux_session: tuple[str, str], live_stack: LiveStack
) -> None:
    tmux, name = tmux_session
    screen = _wait_for(tmux, name, lambda s: "mcp-server" in s and "3/3" in s, 60, "the services")
    for section in (
        "Services",
        "Performance (Prometheus)",
        "Resources (Docker stats)",
        "Alerts",
        "Endpoints",
    ):
        assert section in screen, screen
    assert ":9090" in screen and "(host)" in screen  # published endpoints
    # Load figures from Prometheus (the background clients), once rate() has two samples.
    screen = _wait_for(tmux, name, lambda s: re.search(r"client rps\s*│\s*[\d,]+\.\d\d", s) is not None, 90,
                       "a client rps figure")  # fmt: skip
    assert re.search(r"p99 ms\s*│\s*[\d,]+\.\d\d", screen), screen
    # CPU and memory of the servers, from the Docker stats API.
    assert re.search(r"mcp-server\s*│\s*[\d.]+\s*│\s*\d+", screen), screen
    # It refreshes every 5 s: the sample time in the header moves on.
    first = re.search(r"\d\d:\d\d:\d\d", screen)
    assert first is not None
    _wait_for(tmux, name, lambda s: first.group(0) not in s.splitlines()[0], 15, "a newer sample")
    subprocess.run([tmux, "send-keys", "-t", name, "s"], check=True)
    screen = _wait_for(tmux, name, lambda s: "Service details" in s, 10, "the service details")
    assert "mcp-server.1" in screen and "running" in screen, screen
    subprocess.run([tmux, "send-keys", "-t", name, "l"], check=True)
    _wait_for(tmux, name, lambda s: "logs: " in s, 15, "a service's logs")
    subprocess.run([tmux, "send-keys", "-t", name, "q"], check=True)
    deadline = time.monotonic() + 20
    while subprocess.run([tmux, "has-session", "-t", name], capture_output=True, check=False).returncode == 0:
        assert time.monotonic() < deadline, "q did not quit the monitor"
        time.sleep(0.3)
