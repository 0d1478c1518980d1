"""Every kind of bad input is one line on stderr that names the problem and the fix, never a traceback.

One table for the issue's list: bad CLI and ini options, an invalid profile file,
an unreachable target, a wrong scheme or path, a server speaking the wrong
revision, and Docker missing.  (A port already in use: test_server_cli.py and
test_selfbench.py; an inactive swarm: tests/swarm/test_control.py.)  Each case
runs the real command against real servers on loopback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_mcpswarm.server.launch import ServerProcess

MCPSWARM = [sys.executable, "-m", "pytest_mcpswarm"]
RUN = [*MCPSWARM, "run", "--duration", "1", "--target"]
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _one_line(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    env = {**os.environ, **(env or {})}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, cwd=cwd, env=env)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (2, 4), (done.returncode, done.stdout, done.stderr)  # 4: pytest's usage error
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, ServerProcess]]:
    started = {
        "good": ServerProcess(()).start(),
        "wrong_version": ServerProcess(("--fault", "version:2099-01-01")).start(),
    }
    yield started
    for server in started.values():
        server.stop()


def _profile_file(tmp: Path, text: str) -> str:
    path = tmp / "profiles.toml"
    path.write_text(text)
    return str(path)


# (case id, argv builder, env, [substrings the line must contain: the problem, then the fix])
Case = tuple[str, Callable[[dict[str, ServerProcess], Path], list[str]], dict[str, str], list[str]]
CASES: list[Case] = [
    (
        "cli-bad-value",
        lambda s, t: [*MCPSWARM, "run", "--target", s["good"].ws_url, "--rate", "fast"],
        {},
        ["mcpswarm run: error:", "--rate: invalid float value: 'fast'", "see `mcpswarm run --help`"],
    ),
    (
        "cli-missing-option",
        lambda s, t: [*MCPSWARM, "run"],
        {},
        ["required: --target", "see `mcpswarm run --help`"],
    ),
    (
        "cli-unknown-option",
        lambda s, t: [*MCPSWARM, "swarm", "deploy", "--replicas-please"],
        {},
        ["unrecognized arguments: --replicas-please", "--help"],
    ),
    (
        "pytest-bad-option",
        lambda s, t: [*PYTEST, "--mcpswarm-backend=kubernetes"],
        {},
        ["--mcpswarm-backend must be one of local, swarm, external", "got 'kubernetes'"],
    ),
    (
        "pytest-bad-ini",
        lambda s, t: [*PYTEST, "-c", str(_ini(t, "mcpswarm_workers = zero")), str(t)],
        {},
        ["ini key mcpswarm_workers", "whole number >= 1", "got 'zero'"],
    ),
    (
        "profile-bad-field",
        lambda s, t: [
            *MCPSWARM, "run", "--target", s["good"].ws_url, "--profile", "mine",
            "--profiles-file", _profile_file(t, '[profiles.mine]\nbase = "normal"\nclients = "many"\n'),
        ],
        {},
        ["profile 'mine'", "clients", "docs/RUNNING_BENCHMARKS.md"],
    ),
    (
        "profile-not-toml",
        lambda s, t: [
            *MCPSWARM, "run", "--target", s["good"].ws_url, "--profile", "mine",
            "--profiles-file", _profile_file(t, "[profiles.mine\n"),
        ],
        {},
        ["is not valid TOML", "docs/RUNNING_BENCHMARKS.md"],
    ),
    (
        "unreachable-target",
        lambda s, t: [*RUN, f"ws://127.0.0.1:{_free_port()}/mcp/ws"],
        {},
        ["refused", "check that the server is running"],
    ),
    (
        "wrong-scheme",
        lambda s, t: [*RUN, "ftp://127.0.0.1/mcp"],
        {},
        ["scheme 'ftp'", "use ws://HOST:PORT/PATH"],
    ),
    (
        "websocket-at-the-http-path",
        lambda s, t: [*RUN, f"ws://127.0.0.1:{s['good'].port}/mcp"],
        {},
        ["refused the WebSocket upgrade with HTTP 405", "ws://HOST:PORT/mcp/ws"],
    ),
    (
        "http-at-the-websocket-path",
        lambda s, t: [*RUN, f"http://127.0.0.1:{s['good'].port}/mcp/ws"],
        {},
        ["HTTP 426", "use a ws:// URL"],
    ),
    (
        "wrong-protocol-version",
        lambda s, t: [*RUN, s["wrong_version"].ws_url],
        {},
        ["answered protocol version '2099-01-01'", "--protocol-version"],
    ),
    (
        "unwritable-json",
        lambda s, t: [*RUN, s["good"].ws_url, "--json", str(_profile_file(t, "") + "/run.json")],
        {},
        ["cannot write", "profiles.toml/run.json", "is not a folder", "choose a writable path"],
    ),
    (
        "selfbench-unwritable-json",
        lambda s, t: [*MCPSWARM, "selfbench", "client", "--json", f"{_profile_file(t, '')}/client.json"],
        {},
        ["mcpswarm selfbench: error: cannot write", "is not a folder", "choose a writable path"],
    ),
    (
        "pytest-unwritable-json",
        lambda s, t: [*PYTEST, f"--mcpswarm-json={_profile_file(t, '')}/run.json"],
        {},
        ["--mcpswarm-json must be a file we can write", "profiles.toml is not a folder"],
    ),
    (
        "docker-missing",
        lambda s, t: [*MCPSWARM, "swarm", "status"],
        {"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
        ["cannot reach the Docker engine", "start dockerd"],
    ),
]  # fmt: skip


def _ini(tmp: Path, line: str) -> Path:
    (tmp / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    ini = tmp / "pytest.ini"
    ini.write_text(f"[pytest]\n{line}\n")
    return ini


@pytest.mark.parametrize(("build", "env", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_naming_problem_and_fix(
    servers: dict[str, ServerProcess],
    tmp_path: Path,
    build: Callable[[dict[str, ServerProcess], Path], list[str]],
    env: dict[str, str],
    expected: list[str],
) -> None:
    line = _one_line(build(servers, tmp_path), cwd=tmp_path, env=env)
    for part in expected:
        assert part in line, f"{part!r} not in {line!r}"
    assert " — " in line, f"no fix after the problem: {line!r}"
