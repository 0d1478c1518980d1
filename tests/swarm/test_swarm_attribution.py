"""A swarm scenario's report entry carries the bottleneck verdict, sampled from its replicas' Docker stats."""

from __future__ import annotations

import pytest

from pytest_mcpswarm.backends.swarm import SwarmBackend
from pytest_mcpswarm.report.html import scenario_section
from tests.swarm.live import PERMISSIVE, SERVER_REPLICAS
from tests.swarm.live import runner as _runner
from tests.swarm.live import settings as _settings

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_a_swarm_scenario_is_attributed_from_its_replicas(backend: SwarmBackend) -> None:
    result = _runner(backend, _settings(slas=PERMISSIVE))("low-load", clients=4, rate=25, duration_s=4)
    att = result.data["attribution"]
    assert att["server_source"] == "docker"
    rows = [r for r in att["samples"] if r["server_cpu"] is not None]
    assert len(rows) >= 2, att["samples"]
    # Both sides were read, every replica of each on this single-node swarm.
    assert max(r["server_replicas"] for r in rows) == SERVER_REPLICAS
    assert max(r["client_replicas"] for r in rows) == result.data["client_replicas_reported"] == 2
    assert all(r["client_cpu"] is not None and r["server_rss_mb"] > 10 * SERVER_REPLICAS for r in rows)
    # The CI stack limits client replicas to 0.5 CPU and servers to 1: the ceilings the verdict uses.
    assert {r["client_cpu_ceiling"] for r in rows} == {0.5}
    assert {r["server_cpu_ceiling"] for r in rows} == {1.0}
    # 100 calls/s in all is nothing to either side.
    assert att["verdict"] == "none", att["line"]
    assert "bottleneck: none" in scenario_section(result.data)
