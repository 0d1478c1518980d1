"""``mcpswarm bench``: the suite with JSON and HTML reports (the rig's run_benchmarks.sh)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pytest_mcpswarm.cli import build_parser
from pytest_mcpswarm.cli.bench import pytest_command


def test_bench_turns_its_arguments_into_the_plugins_options(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["bench", "--backend", "swarm", "--swarm-ci", "--quick", "--workers", "3", "--keep-stack",
         "--out", str(tmp_path), "--", "-k", "baseline"]
    )  # fmt: skip
    cmd = pytest_command(args)
    assert cmd[1:3] == ["-m", "pytest"] and cmd[3].endswith("benchmarks")
    line = " ".join(cmd)
    for part in (
        "--mcpswarm-backend swarm", "--mcpswarm-swarm-ci", "--mcpswarm-keep-stack", "--mcpswarm-workers 3",
        "--mcpswarm-time-scale 0.05", "--mcpswarm-load-scale 0.1", "--self-contained-html",
        f"--mcpswarm-json {tmp_path / 'benchmark_report.json'}",
        f"--html {tmp_path / 'benchmark_report.html'}",
    ):  # fmt: skip
        assert part in line, part
    assert cmd[-2:] == ["-k", "baseline"]


def test_bench_runs_the_suite_and_writes_both_reports(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_mcpswarm", "bench", "--quick", "--out", str(out),
         "--", "-k", "slow-client"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    doc = json.loads((out / "benchmark_report.json").read_text())
    assert [s["name"] for s in doc["scenarios"]] == ["slow-client"]
    assert doc["scenarios"][0]["backend"] == "local"
    html = (out / "benchmark_report.html").read_text()
    assert "slow-client" in html and "<html" in html
    assert f"mcpswarm bench: {out / 'benchmark_report.html'}" in proc.stdout
