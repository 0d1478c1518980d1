"""Bottleneck charts read CPU as the verdict does: per process locally, per replica limit on swarm."""

from __future__ import annotations

from typing import Any

from pytest_mcpswarm.report.capacity_charts import attribution_charts, attribution_section


def _att(samples: list[dict[str, Any]], line: str = "bottleneck: none") -> dict[str, Any]:
    return {"verdict": "none", "line": line, "thresholds": {"cpu": 0.9}, "samples": samples}


def test_local_cpu_is_charted_in_cores_against_90_percent_of_a_core() -> None:
    samples = [
        {"t": 0.5, "server_cpu": 1.2, "server_cpu_max": 0.95, "client_cpu": 0.3, "client_cpu_max": 0.3}
    ]
    cpu = attribution_charts(_att(samples))[0]
    assert cpu.key == "resources-cpu" and cpu.y.label == "cores"
    assert [t.y for t in cpu.thresholds] == [0.9]
    assert dict((s.label, s.points[0][1]) for s in cpu.series)["server, busiest process"] == 0.95


def test_swarm_cpu_is_charted_as_a_share_of_each_replicas_limit() -> None:
    # A client replica limited to 0.5 CPU using 0.48 cores is at 96 % of its limit: saturated,
    # though far below one core; the chart must show it above the line the verdict uses.
    samples = [
        {"t": 1.0, "server_cpu": 0.2, "server_cpu_share_max": 0.2, "server_cpu_ceiling": 1.0,
         "client_cpu": 0.48, "client_cpu_share_max": 0.96, "client_cpu_ceiling": 0.5},
    ]  # fmt: skip
    charts = {c.key: c for c in attribution_charts(_att(samples))}
    share = charts["resources-cpu"]
    assert "share of its CPU limit" in share.title
    assert [t.y for t in share.thresholds] == [90.0]
    points = {s.label: s.points[0][1] for s in share.series}
    assert points == {"server replica": 20.0, "generator replica": 96.0}
    cores = {s.label: s.points[0][1] for s in charts["resources-cpu-cores"].series}
    assert cores == {"server, all": 0.2, "generator, all": 0.48}


def test_the_section_shows_the_verdict_line_and_error_types() -> None:
    att = _att([], line="bottleneck: connection limits (3 failed connections)")
    att["errors_by_type"] = {"transport:reset": 3}
    html = attribution_section(att)
    assert "bottleneck: connection limits (3 failed connections)" in html and "transport:reset x3" in html
