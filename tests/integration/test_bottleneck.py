"""Bottleneck attribution on real processes: a comfortable local run, and a bandwidth-capped veth."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import selectors
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from pytest_mcpswarm.capacity.observe import observed_run
from pytest_mcpswarm.load.plan import plan_from_profile
from pytest_mcpswarm.load.profiles import get_profile, override
from pytest_mcpswarm.report import document
from pytest_mcpswarm.report.html import scenario_section
from pytest_mcpswarm.server.launch import ServerProcess
from tests.conftest import require_binary, require_system

ECHO = override(get_profile("normal"), name="echo", methods={"tools/call": 1})


def test_a_comfortable_local_run_has_no_bottleneck(reference_server: Callable[..., ServerProcess]) -> None:
    server = reference_server()
    assert server.proc is not None
    plan = plan_from_profile(
        override(ECHO, clients=4, rate=25, duration_s=4, payload_bytes=256), target=server.ws_url
    )
    result, att = asyncio.run(observed_run(plan, workers=1, server_pids=(server.proc.pid,)))
    assert result.snapshot.outcomes.ok == 400
    assert att["verdict"] == "none", att["line"]
    rows = att["samples"]
    assert len(rows) >= 5
    # Both sides were measured, side by side, and neither was anywhere near a core.
    assert all(r["server_cpu_max"] < 0.5 and r["client_cpu_max"] < 0.5 for r in rows)
    assert max(r["client_rss_mb"] for r in rows) > 10 and max(r["server_rss_mb"] for r in rows) > 10
    assert att["server_source"] == "proc"
    scenario = document.scenario("calm", result, profile="echo", backend="local") | {"attribution": att}
    html = scenario_section(scenario)
    assert 'data-chart="resources-cpu"' in html and "bottleneck: none" in html


@dataclass
class Netns:
    name: str
    host_if: str
    host_ip: str
    server_ip: str


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=20)


@pytest.fixture
def capped_netns() -> Iterator[Netns]:
    """A namespace of our own behind a veth pair whose host end is capped at 1 Mbit/s by tbf."""
    require_system(os.geteuid() == 0, "root", "run as root (CI does) to create network namespaces")
    require_binary("ip", "iproute2")
    require_binary("tc", "iproute2")
    tag = secrets.token_hex(3)
    net = secrets.randbelow(250) + 1
    ns = Netns(f"mcpswarm-{tag}", f"mcsh{tag}", f"10.231.{net}.1", f"10.231.{net}.2")
    peer = f"mcsn{tag}"
    try:
        _sh("ip", "netns", "add", ns.name)
        _sh("ip", "link", "add", ns.host_if, "type", "veth", "peer", "name", peer)
        _sh("ip", "link", "set", peer, "netns", ns.name)
        _sh("ip", "addr", "add", f"{ns.host_ip}/30", "dev", ns.host_if)
        _sh("ip", "link", "set", ns.host_if, "up")
        _sh("ip", "netns", "exec", ns.name, "ip", "addr", "add", f"{ns.server_ip}/30", "dev", peer)
        _sh("ip", "netns", "exec", ns.name, "ip", "link", "set", peer, "up")
        _sh("ip", "netns", "exec", ns.name, "ip", "link", "set", "lo", "up")
        # Requests leave through the host end: cap its egress.
        _sh("tc", "qdisc", "add", "dev", ns.host_if, "root", "tbf", "rate", "1mbit", "burst", "32kbit",
            "latency", "50ms")  # fmt: skip
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns.name], capture_output=True, timeout=20, check=False)
        subprocess.run(["ip", "link", "del", ns.host_if], capture_output=True, timeout=20, check=False)


def _serve_in(ns: Netns) -> tuple[subprocess.Popen[str], str]:
    cmd = ["ip", "netns", "exec", ns.name, sys.executable, "-m", "pytest_mcpswarm", "serve",
           "--host", ns.server_ip, "--port", "0"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if sel.select(20):
            m = re.search(r"listening on http://(\S+) ", proc.stdout.readline())
            if m:
                return proc, f"ws://{m.group(1)}/mcp/ws"
    proc.kill()
    proc.wait()
    raise AssertionError("the server in the namespace did not start")


@pytest.mark.slow
def test_a_tight_bandwidth_cap_is_attributed_to_the_network(capped_netns: Netns) -> None:
    proc, url = _serve_in(capped_netns)
    try:
        # 100 x 2 KB requests per second = 1.6 Mbit/s of payload into a 1 Mbit/s link.
        plan = plan_from_profile(
            override(ECHO, clients=4, rate=25, duration_s=5, payload_bytes=2048), target=url, timeout_s=3.0
        )
        result, att = asyncio.run(
            observed_run(plan, workers=1, server_pids=(proc.pid,), iface=capped_netns.host_if)
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert att["link_bps"] == 1e6  # read back from tc
    assert att["verdict"] == "network", att["line"]
    assert att["line"].startswith("bottleneck: network bandwidth")
    assert att["link_directions"] == ["tx"]  # tbf shapes what leaves the host end
    peak = max(s.get("net_tx_bps") or 0 for s in att["samples"])
    assert 0.85e6 <= peak <= 1.3e6  # requests went out at the cap, not above it
    assert "server_cpu" not in att["saturated"] and "client_cpu" not in att["saturated"]
    # The cap shows up in the latency: requests queue in the qdisc.
    assert result.snapshot.latency.percentile(99) > 100_000
