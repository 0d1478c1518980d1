"""`mcpswarm serve` as a command: --help, bad options, a taken port, --workers and clean shutdown."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pytest_mcpswarm.errors import PortInUseError
from pytest_mcpswarm.server.launch import ServerProcess

CLI = [sys.executable, "-m", "pytest_mcpswarm", "serve"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=30, check=False)


def test_help_documents_every_option() -> None:
    out = run_cli("--help").stdout
    for option in (
        "--host",
        "--port",
        "--workers",
        "--delay-ms",
        "--max-concurrency",
        "--max-message-bytes",
        "--max-sessions",
        "--session-ttl",
        "--allow-origin",
        "--fault",
        "--seed",
        "--replica",
    ):
        assert option in out


@pytest.mark.parametrize("spec", ["drop", "drop:150%", "delay:exp:5", "stall:2s/1s", "explode:1%"])
def test_bad_fault_spec_is_one_line_usage_error(spec: str) -> None:
    result = run_cli("--fault", spec)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "delay:exp:MEAN" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_port_in_use_is_one_line_error(workers: str) -> None:
    with ServerProcess() as srv:
        result = run_cli("--port", str(srv.port), "--workers", workers)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"mcpswarm serve: error: {PortInUseError(f'port {srv.port} on 127.0.0.1 is already in use')}"
    ]


def test_replica_name_in_replies() -> None:
    with ServerProcess(env={"MCPSWARM_REPLICA": "replica-7"}) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        conn.request("GET", "/health")
        assert json.loads(conn.getresponse().read())["replica"] == "replica-7"
        conn.close()


def children_of(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_two_workers_share_the_port_and_die_with_the_parent(how: str) -> None:
    srv = ServerProcess(["--workers", "2"]).start()
    try:
        assert srv.proc is not None
        kids = children_of(srv.proc.pid)
        assert len(kids) == 2
        seen = set()
        for _ in range(40):  # SO_REUSEPORT spreads new connections by their 4-tuple hash
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
            conn.request("GET", "/health")
            seen.add(json.loads(conn.getresponse().read())["worker"])
            conn.close()
        assert seen == {0, 1}
        os.kill(srv.proc.pid, getattr(signal, how))
        srv.proc.wait(10)
        deadline = time.monotonic() + 5
        while any(alive(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(k) for k in kids)
    finally:
        srv.stop()
