"""pytest-html 4.x integration: columns, chart extras, the summary at the top, environment metadata.

The scenario dicts are a real run's (a reference server on loopback measured
by ``mcpswarm run``); the inner test session hands them to the plugin the way
the ``mcpswarm`` fixture does: ``item.stash[plugin.SCENARIO_KEY]`` and the
session object's ``record``.  The report is then read twice: as the file
pytest-html wrote, and as the DOM headless Chromium renders from it.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_mcpswarm import plugin
from pytest_mcpswarm.report.browser import dump_dom, pixel_stats, screenshot
from pytest_mcpswarm.server.launch import ServerProcess
from tests.conftest import require_binary

pytest_plugins = ["pytester"]

INNER = """
import copy, json, pathlib
import pytest
from pytest_mcpswarm import plugin

RUN = json.loads(pathlib.Path(__file__).with_name("run.json").read_text())["scenarios"][0]


@pytest.fixture
def ran(request):
    def run(name, passed):
        s = copy.deepcopy(RUN)
        s["name"] = name
        s["summary"] = {}  # the plugin's scenarios carry one; its terminal summary reads it
        check = {"metric": "p99", "op": "<", "threshold": 1e6 if passed else 0.001, "unit": "ms",
                 "actual": s["latency_ms"]["p99"], "passed": passed, "window_s": None,
                 "worst_window_s": None, "failed_windows": 0, "windows": 0}
        s["sla"] = {"passed": passed, "message": "SLA", "checks": [check]}
        request.node.stash[plugin.SCENARIO_KEY] = s
        request.config.stash[plugin.SESSION_KEY].record(s)
        return s
    return run


def test_fast(ran):
    ran("fast", True)


def test_slow(ran):
    s = ran("slow", False)
    assert s["sla"]["passed"], "SLA failed"


def test_not_a_benchmark():
    pass
"""


@pytest.fixture(scope="module")
def run_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run.json"
    with ServerProcess(["--port", "0"]) as server:
        done = subprocess.run(
            [sys.executable, "-m", "pytest_mcpswarm", "run", "--target", server.ws_url, "--clients", "4",
             "--duration", "3", "--workers", "1", "--json", str(out)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture
def html_report(
    pytester: pytest.Pytester, run_json: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, pytest.RunResult]:
    if not hasattr(plugin, "SCENARIO_KEY"):  # until the plugin declares it
        monkeypatch.setattr(plugin, "SCENARIO_KEY", pytest.StashKey[Any](), raising=False)
    (pytester.path / "run.json").write_bytes(run_json.read_bytes())
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_bench=INNER)
    result = pytester.runpytest("-p", "no:cacheprovider", "--html=report.html", "--self-contained-html")
    result.assert_outcomes(passed=2, failed=1)
    return pytester.path / "report.html", result


def _blob(text: str) -> dict[str, Any]:
    match = re.search(r'data-jsonblob="([^"]*)"', text)
    assert match
    data: dict[str, Any] = json.loads(html.unescape(match.group(1)))
    return data


def test_columns_extras_summary_and_environment(html_report: tuple[Path, pytest.RunResult]) -> None:
    path, _ = html_report
    text = path.read_text()
    data = _blob(text)
    # Extra columns, in the header and in every row (empty for a non-benchmark test).
    header = re.search(r'<thead id="results-table-head">(.*?)</thead>', text, re.S)
    assert header and [h in header.group(1) for h in ("Throughput", "p99", "Error rate", "SLA")] == [True] * 4
    rows = {node.split("::")[-1]: tests[0] for node, tests in data["tests"].items()}
    assert set(rows) == {"test_fast", "test_slow", "test_not_a_benchmark"}
    fast = "".join(rows["test_fast"]["resultsTableRow"])
    assert "req/s" in fast and ">PASS<" in fast
    assert ">FAIL<" in "".join(rows["test_slow"]["resultsTableRow"])
    plain = rows["test_not_a_benchmark"]["resultsTableRow"]
    assert len(plain) == len(rows["test_fast"]["resultsTableRow"])
    assert '<td class="col-mcpswarm-sla"></td>' in plain
    # Charts as HTML extras (inline SVG: nothing beside the file).
    extras = [e for e in rows["test_fast"]["extras"] if e["format_type"] == "html"]
    assert len(extras) == 1 and extras[0]["content"].count("<svg") == 5
    assert rows["test_not_a_benchmark"]["extras"] == []
    # The summary table sits in the static summary section, before the results table.
    summary_at = text.index("Load test results")
    assert summary_at < text.index('<table id="results-table">')
    assert re.findall(r'data-scenario="(\w+)" data-verdict="([A-Z ]+)"', text) == [
        ("fast", "PASS"),
        ("slow", "FAIL"),
    ]
    assert "p99 &lt; 0.001ms: actual" in text
    # Environment metadata via pytest-metadata.
    env = data["environment"]
    assert env["mcpswarm"] and env["mcpswarm targets"].startswith("ws://127.0.0.1:")
    assert env["mcpswarm backends"] == "external" and env["MCP protocol versions"]
    assert not re.search(r"<script[^>]+src=|<link ", text)


def test_report_in_chromium(html_report: tuple[Path, pytest.RunResult], tmp_path: Path) -> None:
    require_binary("chromium", "chromium")
    path, _ = html_report
    dom = dump_dom(path)
    # pytest-html builds its table in the browser: one tbody per test.
    rendered = re.findall(r'<td class="col-testId">([^<]+)</td>', dom)
    assert sorted(t.split("::")[-1] for t in rendered) == ["test_fast", "test_not_a_benchmark", "test_slow"]
    summary = re.findall(r'<tr data-scenario="(\w+)" data-verdict="([A-Z ]+)"', dom)
    assert summary == [("fast", "PASS"), ("slow", "FAIL")]
    charts = re.findall(r'<svg[^>]*data-chart="(\w+)"[^>]*data-points="(\d+)"', dom)
    assert [key for key, _ in charts] == ["latency", "rps", "distribution", "errors", "connections"] * 2
    assert all(int(n) > 0 for _, n in charts)
    for points in re.findall(r'<polyline class="series"[^>]*points="([^"]+)"', dom):
        xs = {p.split(",")[0] for p in points.split()}
        assert len(xs) > 1 or len(points.split()) == 1
    png = screenshot(path, tmp_path / "pytest-html.png")
    stats = pixel_stats(png.read_bytes())
    assert stats.levels > 20 and 0.01 < stats.ink < 0.6, stats
    print(f"screenshot: {png}")
