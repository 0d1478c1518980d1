"""The original swarm rig's scenarios as pytest tests, each with its default SLA.

Full size they take about 30 minutes; shrink them for CI or a first run::

    pytest benchmarks --mcpswarm-time-scale 0.05 --mcpswarm-load-scale 0.1   # ~2 min (./dev bench)

Point them at any MCP server with ``--mcpswarm-target URL``; replace an SLA with
``--mcpswarm-sla baseline='p99<50ms'`` and change a parameter with
``--mcpswarm-set message-bombing.bombing.rate=2000``.  The definitions (phases,
client counts, default SLAs) are in ``pytest_mcpswarm.scenarios``.
"""

from __future__ import annotations

import pytest

from pytest_mcpswarm.fixtures import ScenarioRunner


def test_baseline(mcpswarm: ScenarioRunner) -> None:
    """Steady-state latency and throughput under the normal profile.

    25 clients x 100 msg/s (about 2.5K msg/s) of tools/call, resources/list and
    resources/read with 512 B payloads, for 5 minutes.  The first 30 s are
    warm-up and excluded from every statistic.  Default SLA: p95 < 100 ms,
    p99 < 200 ms, error rate < 0.1 %, and at least 95 % of the offered rate
    answered.
    """
    result = mcpswarm("baseline")
    assert result["summary"]["offered_rps"] > 0


def test_connection_flood(mcpswarm: ScenarioRunner) -> None:
    """Connection handling: 0 -> 500 connections over 5 min, 3 min at 500, down to 25 over 2 min.

    Each connection sends 10 msg/s of the low-load mix (tools/list,
    resources/list).  Reports the peak number of connections, connect
    failures, the error rate and p95 at the peak.  Default SLA: error rate
    < 0.1 %, p95 < 200 ms; and every connection must be accepted.
    """
    result = mcpswarm("connection-flood")
    summary = result["summary"]
    assert summary["connect_failures"] == 0, (
        f"{summary['connect_failures']} connections failed to open "
        f"(errors: {result['connect_errors']}); peak reached {summary['peak_connections']}"
    )


def test_message_bombing(mcpswarm: ScenarioRunner) -> None:
    """Capacity limit: 20 clients x 10K msg/s of ping (about 200K msg/s) for 5 min.

    30 s of initialisation at 100 msg/s per client, 5 min of bombing, then a
    2 min cool-down at 100 msg/s.  Reports peak throughput, the degradation
    (bombing p99 / init p99), the error rate per phase and the recovery time:
    from the end of the bombing until a 1 s window's p99 and error rate are
    back within 10 % of the init phase's.  Default SLA: error rate < 1 %.
    """
    result = mcpswarm("message-bombing")
    summary = result["summary"]
    assert set(summary["error_rate_by_phase_pct"]) == {"init", "bombing", "cool-down"}
    assert summary["peak_throughput_rps"] > 0


@pytest.mark.parametrize("profile", ["high-load", "low-load", "slow-client"])
def test_profile(mcpswarm: ScenarioRunner, profile: str) -> None:
    """One built-in profile for 2 minutes at its clients x rate.

    high-load: 50 x 1000 msg/s, 2 KB (p99 < 500 ms); low-load: 10 x 10 msg/s,
    256 B (p99 < 100 ms); slow-client: 5 x 1 msg/s, 1 KB (p99 < 100 ms).  All:
    error rate < 0.1 %; high- and low-load also at least 95 % of the offered rate.
    """
    result = mcpswarm(profile)
    assert result["requests"]["scheduled"] > 0
