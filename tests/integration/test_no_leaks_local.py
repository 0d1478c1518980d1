"""kill -9 of whatever started our servers or generator workers leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")


def _children_of(pid: int) -> set[int]:
    out: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 (after the parenthesised command) is the parent pid.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            out.add(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pids: set[int], seconds: float = 10.0) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = {p for p in pids if _alive(p)}
        if not alive:
            return set()
        time.sleep(0.1)
    return {p for p in pids if _alive(p)}


def _start(script: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )


def test_servers_die_with_their_launcher_after_kill_9() -> None:
    launcher = _start(
        """
        import time
        from pytest_mcpswarm.server.launch import ServerProcess
        servers = [ServerProcess(["--workers", "2"]).start() for _ in range(2)]
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    assert launcher.stdout is not None
    assert launcher.stdout.readline().strip() == "ready"
    servers = _children_of(launcher.pid)
    grandchildren = set().union(*(_children_of(p) for p in servers))
    assert len(servers) == 2 and len(grandchildren) == 4  # two supervisors, two workers each
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    launcher.stdout.close()
    assert _wait_gone(servers | grandchildren) == set()


def test_generator_workers_die_with_the_controller_after_kill_9(tmp_path: Path) -> None:
    controller = _start(
        """
        import asyncio
        from pytest_mcpswarm.load.controller import run_workers
        from pytest_mcpswarm.load.plan import RunPlan
        from pytest_mcpswarm.load.requests import MethodSpec
        from pytest_mcpswarm.load.shapes import Stage
        plan = RunPlan(target="ws://127.0.0.1:1/mcp/ws", methods=(MethodSpec("tools/list", None, 1.0),),
                       stages=(Stage(60.0, 4, 1.0),), start_connections=4)
        print("starting", flush=True)
        asyncio.run(run_workers(plan, 2))
        """
    )
    assert controller.stdout is not None
    assert controller.stdout.readline().strip() == "starting"
    deadline = time.monotonic() + 10
    workers: set[int] = set()
    while len(workers) < 2 and time.monotonic() < deadline:
        workers = _children_of(controller.pid)
        time.sleep(0.1)
    assert len(workers) == 2
    controller.send_signal(signal.SIGKILL)
    controller.wait()
    controller.stdout.close()
    assert _wait_gone(workers) == set()
