"""`mcpswarm ceiling` against a reference server of known capacity, and `mcpswarm plan` end to end."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import yaml

from pytest_mcpswarm.cli import main
from pytest_mcpswarm.server.launch import ServerProcess

# --delay-ms 10 --max-concurrency 4: four 10 ms service slots = 400 tools/call per second.
DELAY_MS, SLOTS = 10, 4
CAPACITY = SLOTS * 1000 / DELAY_MS


@pytest.mark.slow
def test_ceiling_is_within_15_percent_of_capacity(
    reference_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = reference_server("--delay-ms", str(DELAY_MS), "--max-concurrency", str(SLOTS))
    profiles = tmp_path / "p.toml"
    # Only tools/call pays the service delay; 8 connections share the offered rate.
    profiles.write_text(
        '[profiles.echo]\nbase = "normal"\nclients = 8\npayload_bytes = 256\nmethods = {"tools/call" = 1}\n'
    )
    out, html = tmp_path / "ceiling.json", tmp_path / "ceiling.html"
    started = time.monotonic()
    code = main(
        ["ceiling", "--target", server.ws_url, "--profile", "echo", "--profiles-file", str(profiles),
         "--sla", "p99<100ms", "--workers", "1", "--step-seconds", "3", "--start-rate", "150",
         "--precision", "0.1", "--json", str(out), "--html", str(html)]
    )  # fmt: skip
    elapsed = time.monotonic() - started
    doc = orjson.loads(out.read_bytes())
    ceiling = doc["ceiling"]
    assert code == 0, ceiling["stopped_because"]
    assert abs(ceiling["rps"] - CAPACITY) <= 0.15 * CAPACITY, ceiling
    assert ceiling["last_pass"]["passed"] and ceiling["last_pass"]["offered_rps"] == ceiling["rps"]
    assert ceiling["first_fail"] is not None and not ceiling["first_fail"]["passed"]
    assert ceiling["first_fail"]["offered_rps"] > ceiling["rps"]
    assert ceiling["stopped_because"].startswith("converged")
    steps = ceiling["steps"]
    assert [s["phase"] for s in steps][:2] == ["step-up", "step-up"] and steps[-1]["phase"] == "bisect"
    # Above capacity the server answers at most ~its capacity, whatever is offered.
    assert all(s["achieved_rps"] <= CAPACITY * 1.05 for s in steps)
    assert {s["name"].split(" @")[0] for s in doc["scenarios"]} == {"ceiling last pass", "ceiling first fail"}
    page = html.read_text()
    assert 'data-chart="knee"' in page and 'data-chart="answered"' in page
    assert elapsed < 75, f"the search took {elapsed:.0f} s"


def test_plan_end_to_end_with_a_tiny_calibration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    override = tmp_path / "override.yml"
    code = main(
        ["plan", "--total-rate", "200000", "--profile", "message-bomber", "--calibrate",
         "--calibration-seconds", "1", "--calibration-rate", "2000", "--calibration-rounds", "1",
         "--write-override", str(override), "--compose", str(tmp_path / "none.yml")]
    )  # fmt: skip
    assert code == 0
    cal = orjson.loads((tmp_path / ".mcpswarm" / "calibration.json").read_bytes())
    assert cal["answered"] >= 1900 and cal["per_core_rps"] > 0 and cal["offered_rps"] == 2000
    doc = yaml.safe_load(override.read_text())
    svc = doc["services"]["mcp-client-message-bomber"]
    replicas = svc["deploy"]["replicas"]
    per_replica = cal["per_core_rps"] * 0.7
    # The least number of replicas that keeps each one at or under 70 % of a measured core.
    assert 200000 / replicas <= per_replica * (1 + 1e-9)
    assert replicas == 1 or 200000 / (replicas - 1) > per_replica
    assert (
        float(svc["deploy"]["resources"]["reservations"]["cpus"]) >= 200000 / replicas / cal["per_core_rps"]
    )
    # A saved calibration is used without measuring again.
    assert main(["plan", "--total-rate", "1000", "--calibration", ".mcpswarm/calibration.json"]) == 0


def test_plan_without_calibration_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "--total-rate", "1000"]) == 2
    assert "mcpswarm plan --calibrate" in capsys.readouterr().err
