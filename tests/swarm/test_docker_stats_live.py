"""The swarm backend's resource sampler on real containers: the server image under load.

A ``mcpswarm/server`` container on the default bridge (``docker run``, labelled
``mcpswarm.test=attribution`` and removed afterwards; no stack, no published port), loaded over
its IP by the engine:

- unlimited: the Docker stats sampler sees its CPU rise from idle, and its CPU seconds agree
  with what the server process itself counted (``process_cpu_seconds_total``);
- limited to 0.02 CPU (as ``deploy.resources.limits.cpus`` limits a replica), offered more than
  that buys: the verdict is "server CPU" though the replica never comes near a whole core.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pytest_mcpswarm.capacity.docker_stats import SERVICE_LABEL, DockerStatsSampler, service_sampler
from pytest_mcpswarm.capacity.observe import attribution_of
from pytest_mcpswarm.capacity.procfs import scrape
from pytest_mcpswarm.load.controller import START_DELAY_S, run_workers
from pytest_mcpswarm.load.plan import plan_from_profile
from pytest_mcpswarm.load.profiles import get_profile, override
from pytest_mcpswarm.swarm.images import image_exists
from tests.conftest import require_system
from tests.swarm.conftest import connect_or_skip

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ECHO = override(get_profile("normal"), name="echo", methods={"tools/call": 1})
IDLE_S = 3.0


def _service(run: str) -> str:
    """A made-up ``<stack>_<service>`` name: no stack of that name exists."""
    return f"mcpswarm-attribution-{run}_mcp-server"


def _healthy(ip: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{ip}:8080/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server container at {ip} did not answer /health within {timeout:.0f} s")


Started = tuple[Any, str, str]


@pytest.fixture
def server_container() -> Iterator[Callable[..., Started]]:
    """Factory ``start(nano_cpus=0) -> (client, container IP, run label)``; every container is removed."""
    client = connect_or_skip()
    image = os.environ.get("MCPSWARM_SERVER_IMAGE") or "mcpswarm/server:latest"
    require_system(image_exists(image), f"the image {image}", "run `mcpswarm swarm images --offline`")
    started: list[Any] = []

    def start(nano_cpus: int = 0) -> Started:
        run = secrets.token_hex(4)
        container = client.containers.run(
            image,
            detach=True,
            name=f"mcpswarm-attribution-{run}",
            # The service label Swarm gives a task's container, so service_sampler finds it too.
            labels={"mcpswarm.test": "attribution", "mcpswarm.test.run": run, SERVICE_LABEL: _service(run)},
            environment={"MCPSWARM_REPLICA": f"attribution-{run}"},
            nano_cpus=nano_cpus,
        )
        started.append(container)
        container.reload()
        ip = container.attrs["NetworkSettings"]["IPAddress"]
        assert ip, "the container has no bridge address"
        _healthy(ip)
        return client, ip, run

    try:
        yield start
    finally:
        for container in started:
            container.remove(force=True)
        client.close()


def test_the_sampler_sees_a_loaded_server_container(server_container: Callable[..., Started]) -> None:
    client, ip, run = server_container()
    # 5,000 echo calls/s over 10 WebSocket connections for 4 s: well above idle, below a core.
    plan = plan_from_profile(
        override(ECHO, clients=10, rate=500, duration_s=4, payload_bytes=256),
        target=f"ws://{ip}:5555/mcp/ws",
        timeout_s=2.0,
    )
    metrics = f"http://{ip}:9100/metrics"
    cpu_before = scrape(metrics)["process_cpu_seconds_total"]
    # Sample times line up with the run's t=0, IDLE_S after the sampler starts: t<0 is idle.
    sampler = DockerStatsSampler(
        client, servers={"mcpswarm.test.run": run}, t0=time.time() + IDLE_S + START_DELAY_S
    )
    with sampler:
        time.sleep(IDLE_S)
        result = asyncio.run(run_workers(plan, 1))
        time.sleep(1.2)  # one more reading after the last answer
    cpu_after = scrape(metrics)["process_cpu_seconds_total"]
    assert result.snapshot.outcomes.ok == 20_000, result.snapshot.outcomes
    rows = sampler.samples
    assert sampler.failed_reads == 0
    assert all(r["server_replicas"] == 1 for r in rows)
    # The engine reads at most once a second: a sample is the second before its reading.
    assert all(0.8 < b["t"] - a["t"] < 1.5 for a, b in itertools.pairwise(rows)), rows
    idle = [r["server_cpu"] for r in rows if r["t"] < -0.5]
    busy = [r["server_cpu"] for r in rows if 0.5 <= r["t"] <= plan.duration_s + 1]
    assert len(idle) >= 1 and len(busy) >= 3, rows
    assert max(idle) < 0.05, idle  # an idle asyncio server
    # ... whose CPU rose under load (not evenly on a shared machine: the generator may lag).
    assert max(busy) > max(0.05, 5 * max(idle)), rows
    assert all(r["server_cpu_max"] == r["server_cpu"] for r in rows)  # one replica: it is the busiest
    assert all(10 < r["server_rss_mb"] < 256 for r in rows)
    # The same CPU seconds as the server process counted itself (cores x interval, summed).
    spans = [sampler.interval_s] + [b["t"] - a["t"] for a, b in itertools.pairwise(rows)]
    sampled = sum((r["server_cpu"] or 0.0) * dt for r, dt in zip(rows, spans, strict=True))
    counted = cpu_after - cpu_before
    assert counted > 0.2
    assert sampled == pytest.approx(counted, rel=0.25), (sampled, counted)
    assert all(not r["server_throttled_max"] for r in rows)  # no limit, never held back
    assert result.snapshot.latency.percentile(50) < 5_000
    att = attribution_of(result, sampler)
    assert att["server_source"] == "docker"
    assert att["verdict"] == "none", att["line"]
    print(
        f"\nidle {max(idle):.3f} cores, loaded {min(busy):.2f}-{max(busy):.2f} cores; "
        f"{sampled:.2f} CPU-s sampled vs {counted:.2f} counted by the server"
    )


def test_a_replica_at_its_cpu_limit_is_attributed_to_server_cpu(
    server_container: Callable[..., Started],
) -> None:
    # A replica limited to 0.02 CPU (Swarm's limits.cpus, as --cpus) offered 2,000 echo calls/s for 4 s.
    client, ip, run = server_container(nano_cpus=20_000_000)
    plan = plan_from_profile(
        override(ECHO, clients=8, rate=250, duration_s=4, payload_bytes=256),
        target=f"ws://{ip}:5555/mcp/ws",
        timeout_s=2.0,
    )
    # Selected as the swarm backend selects its server replicas: by service name.
    sampler = service_sampler(client, servers=_service(run), t0=time.time() + START_DELAY_S)
    with sampler:
        result = asyncio.run(run_workers(plan, 1))
    att = attribution_of(result, sampler)
    assert att["verdict"] == "server_cpu", (att["line"], sampler.samples)
    assert att["line"].startswith("bottleneck: server CPU (a server replica at ")
    rows = [r for r in sampler.samples if 0 <= r["t"] <= plan.duration_s]
    # Evidence: at its limit, far below a core ...
    assert all(r["server_cpu_max"] < 0.05 for r in rows), rows
    assert max(r["server_cpu_share_max"] for r in rows) >= 0.9
    # ... because the kernel held it back: most CFS periods hit the quota, and requests queued.
    assert sum(1 for r in rows if (r["server_throttled_max"] or 0) >= 0.5) >= 2, rows
    assert result.snapshot.latency.percentile(50) > 10_000
    print(f"\n{att['line']}; {max(r['server_cpu_max'] for r in rows):.3f} cores at most, throttled "
          f"{max(r['server_throttled_max'] or 0 for r in rows):.0%}; p50 "
          f"{result.snapshot.latency.percentile(50) / 1000:.1f} ms")  # fmt: skip
