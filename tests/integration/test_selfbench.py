"""``mcpswarm selfbench server`` end to end, the checks that keep its figures honest, and the
raw loop split behind ``selfbench client``'s (d) reference.

Speeds are never asserted: they depend on the machine.  What is asserted is
that both figures and the ratio are printed, that a wrong reply is caught
before anything is measured, and that no server outlives the command.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_mcpswarm.errors import ProtocolError, UsageError
from pytest_mcpswarm.selfbench import client, peers, runner, wrk
from pytest_mcpswarm.selfbench.driver import run_driver
from pytest_mcpswarm.selfbench.request import ToolCall
from pytest_mcpswarm.selfbench.wsframe import parse_client_frame, text_frame
from pytest_mcpswarm.server.launch import ServerProcess

_PR_SET_CHILD_SUBREAPER = 36


def _children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every live process whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # Field 4 (ppid) follows the parenthesised command name, which may itself hold spaces.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append((int(entry.name), cmdline.strip()))
    return found


@contextlib.contextmanager
def _subreaper() -> Iterator[None]:
    """Make this process inherit orphans, so a server the CLI failed to stop shows up as our child."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1) != 0:
        pytest.skip("PR_SET_CHILD_SUBREAPER is not available")
    try:
        yield
    finally:
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 0)


def _run_cli(
    *args: str, timeout: float = 240, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_mcpswarm", "selfbench", "server", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


@pytest.mark.slow
def test_server_prints_both_figures_and_ratio_and_leaves_no_process(tmp_path: Path) -> None:
    out = tmp_path / "selfbench.json"
    with _subreaper():
        done = _run_cli("--duration", "1", "--warmup", "0.5", "--json", str(out))
        time.sleep(0.5)  # an orphan's reparenting is asynchronous to our child's exit
        leftovers = _children_of(os.getpid())
        for pid, _ in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    assert done.returncode == 0, done.stderr
    assert leftovers == [], f"selfbench left processes behind: {leftovers}"
    assert "Traceback" not in done.stderr
    rows = {
        m[1]: m[2]
        for m in re.finditer(r"^\s*(mcpswarm|mcp SDK)\s+([\d,]+)\s+[\d.]+ ms\s+[\d.]+ ms", done.stdout, re.M)
    }
    assert set(rows) == {"mcpswarm", "mcp SDK"}, done.stdout
    assert all(int(v.replace(",", "")) > 0 for v in rows.values())
    assert re.search(r"^ratio ours/SDK: [\d.]+x \(goal >= 10x per core", done.stdout, re.M), done.stdout
    assert re.search(r"^WebSocket tools/call/s \(mcpswarm, 1 server core\): [\d,]+ ", done.stdout, re.M)
    assert out.is_file() and b'"ratio_ours_over_sdk"' in out.read_bytes()


@pytest.fixture(scope="module")
def sdk_peer() -> Iterator[peers.RunningPeer]:
    peer = peers.start(peers.SDK, peers.free_port(), [])
    try:
        yield peer
    finally:
        peer.stop()


def test_validation_accepts_the_real_echo(sdk_peer: peers.RunningPeer) -> None:
    peers.validate(sdk_peer, ToolCall())


@pytest.mark.parametrize(
    ("call", "why"),
    [
        (ToolCall(tool="no_such_tool"), "tool error"),
        (ToolCall(version="2099-01-01"), "JSON-RPC error"),
        (ToolCall(text="x", request_id=7), None),  # sanity: a valid call with other values passes
    ],
)
def test_validation_catches_a_server_that_did_not_really_answer(
    sdk_peer: peers.RunningPeer, call: ToolCall, why: str | None
) -> None:
    if why is None:
        peers.validate(sdk_peer, call)
        return
    with pytest.raises(ProtocolError, match=why):
        peers.validate(sdk_peer, call)


def test_port_in_use_is_one_line_error_and_starts_nothing() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = _run_cli("--duration", "1", "--sdk-port", str(port), timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("mcpswarm selfbench: error: port ") and "already in use" in lines[-1]
    assert "Traceback" not in done.stderr


def test_client_frames_are_masked_and_round_trip() -> None:
    for size in (10, 200, 70_000):
        payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        frame = text_frame(payload)
        assert parse_client_frame(frame) == (0x1, True, payload)
        assert payload[:16] not in frame or size < 16  # the payload travels masked


def test_wrk_output_is_parsed() -> None:
    sample = """Running 1s test @ http://127.0.0.1:1/mcp
  1 threads and 32 connections
  Latency Distribution
     50%  251.00us
     75%  300.00us
     90%  400.00us
     99%    1.20ms
  12345 requests in 1.00s, 4.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  12345.67
Transfer/sec:      4.00MB
"""
    assert wrk.parse(sample) == (12345, 1.0, 12345.67, 0.251, 1.2, 7)
    script = wrk.lua_script(ToolCall())
    for header in ("Mcp-Method", "Mcp-Name", "MCP-Protocol-Version", "Accept", "Content-Type"):
        assert f'wrk.headers["{header}"]' in script


def test_without_wrk_the_python_driver_is_used_and_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wrk, "available", lambda: False)
    notes: list[str] = []
    assert runner._choose_client(runner.Settings(), notes) == "python"
    assert notes == ["wrk not found: apt-get install wrk"]
    with pytest.raises(UsageError, match="wrk not found"):
        runner._choose_client(runner.Settings(client="wrk"), [])


@pytest.mark.slow
def test_without_wrk_on_path_the_python_driver_runs_and_is_labelled(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    taskset = shutil.which("taskset")
    if taskset is not None:
        (bin_dir / "taskset").symlink_to(taskset)
    env = {**os.environ, "PATH": str(bin_dir)}
    done = _run_cli("--duration", "1", "--warmup", "0", "--no-ws", env=env)
    assert done.returncode == 0, done.stderr
    assert "wrk not found: apt-get install wrk" in done.stdout.splitlines()
    assert "[fallback: our Python HTTP driver, not wrk]" in done.stdout
    assert re.search(r"^ratio ours/SDK: [\d.]+x", done.stdout, re.M), done.stdout


@pytest.mark.slow
def test_the_raw_split_runs_two_loops_and_sums_them(reference_server: Callable[..., ServerProcess]) -> None:
    server = reference_server()
    case = client.cases(server.port, 1.0, 2.0)["split-raw-2"]
    args = dict(case.args, connections=4, rate=500)
    with _subreaper():
        got, _ = run_driver(case.module, [json.dumps(args)], [], budget=60)
        assert not [p for p in _children_of(os.getpid()) if "client_raw" in p[1]]
    assert got["processes"] == 2
    # 4 connections x 500/s over the 2 s window, whichever process each connection ran in.
    assert got["requests"] == pytest.approx(4 * 500 * got["seconds"], rel=0.05)
    assert got["sent"] >= got["requests"]
    assert 0 < got["cpu_s"] < 2 * got["seconds"]


def test_a_failing_raw_split_reports_one_error_line() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    args = dict(client.cases(port, 1.0, 2.0)["split-raw-2"].args, connections=2)
    done = subprocess.run(
        [sys.executable, "-m", "pytest_mcpswarm.selfbench.client_raw", json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    (line,) = done.stdout.splitlines()
    assert json.loads(line)["error"].startswith("raw loop: ")
    assert "Traceback" not in done.stderr
