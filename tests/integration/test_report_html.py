"""``mcpswarm report`` on a real run's JSON, opened in headless Chromium.

A real reference server on loopback, a real ``mcpswarm run --json``, then the
HTML it renders is loaded by Chromium: the summary table has a row per
scenario, each of the five charts of each scenario has data points that
differ from each other, and the screenshot is not blank.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest

from pytest_mcpswarm.report.browser import dump_dom, pixel_stats, screenshot
from tests.conftest import require_binary

CHARTS = ("latency", "rps", "distribution", "errors", "connections")


def _mcpswarm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_mcpswarm", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class RenderedDom(HTMLParser):
    """Summary rows and, per chart, the vertices of its data lines, from the DOM Chromium rendered."""

    def __init__(self) -> None:
        super().__init__()
        self.summary_rows: list[dict[str, str | None]] = []
        self.charts: list[dict[str, Any]] = []
        self.screen_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-verdict"):
            self.summary_rows.append(a)
        elif tag == "svg" and a.get("data-chart"):
            self.charts.append(
                {"key": a["data-chart"], "declared": int(a.get("data-points") or 0), "points": []}
            )
        elif tag == "polyline" and a.get("class") == "series" and self.charts:
            pts = [tuple(map(float, p.split(","))) for p in (a.get("points") or "").split()]
            self.charts[-1]["points"].extend(pts)

    def handle_data(self, data: str) -> None:
        self.screen_text.append(data)


def parse_dom(html: str) -> RenderedDom:
    dom = RenderedDom()
    dom.feed(html)
    return dom


def assert_charts_have_run_data(dom: RenderedDom, scenarios: int) -> None:
    keys = [c["key"] for c in dom.charts]
    assert keys == list(CHARTS) * scenarios
    for chart in dom.charts:
        xs = {x for x, _ in chart["points"]}
        ys = {y for _, y in chart["points"]}
        assert chart["declared"] > 0 and len(chart["points"]) == chart["declared"], chart["key"]
        assert len(xs) > 1, f"{chart['key']}: every point at the same x"
        if chart["key"] in ("latency", "distribution"):  # p50 < p99; a spectrum rises
            assert len(ys) > 1, f"{chart['key']}: a flat line where the run's values vary"


def assert_not_blank(png: Path) -> None:
    stats = pixel_stats(png.read_bytes())
    assert (stats.width, stats.height) == (1280, 2000)
    assert stats.levels > 20, stats  # text, lines and badges, not one flat colour
    assert 0.01 < stats.ink < 0.6, stats


@pytest.fixture
def real_run(reference_server: Callable[..., Any], tmp_path: Path) -> Path:
    server = reference_server()
    out = tmp_path / "run.json"
    done = _mcpswarm(
        "run", "--target", server.ws_url, "--profile", "normal", "--clients", "5", "--duration", "4",
        "--workers", "1", "--json", str(out), "--sla", "p99<250ms, error_rate<0.1%, rps>=400",
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr  # 1: the SLA failed, the report is still written
    return out


def test_report_from_a_real_run_in_chromium(real_run: Path, tmp_path: Path) -> None:
    require_binary("chromium", "chromium")
    page = tmp_path / "report.html"
    done = _mcpswarm("report", str(real_run), "--html", str(page))
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    assert not re.search(r"<script|\ssrc=|<link", html), "the report must not load anything"

    dom = parse_dom(dump_dom(page))
    doc = orjson.loads(real_run.read_bytes())
    assert [r["data-scenario"] for r in dom.summary_rows] == [s["name"] for s in doc["scenarios"]]
    assert dom.summary_rows[0]["data-verdict"] == ("PASS" if doc["scenarios"][0]["sla"]["passed"] else "FAIL")
    assert_charts_have_run_data(dom, len(doc["scenarios"]))

    png = screenshot(page, tmp_path / "report.png")
    assert_not_blank(png)
    print(f"screenshot: {png}")


def test_screenshot_option(real_run: Path, tmp_path: Path) -> None:
    require_binary("chromium", "chromium")
    png = tmp_path / "img" / "shot.png"
    done = _mcpswarm("report", str(real_run), "--html", str(tmp_path / "r.html"), "--screenshot", str(png))
    assert done.returncode == 0, done.stderr
    assert f"screenshot: {png}" in done.stdout
    assert_not_blank(png)


def test_a_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    done = _mcpswarm("report", str(tmp_path / "nope.json"), "--html", str(tmp_path / "x.html"))
    assert done.returncode == 2
    assert "nope.json: no such file" in done.stderr and "Traceback" not in done.stderr


def test_a_foreign_json_is_refused_with_the_expected_schema(tmp_path: Path) -> None:
    other = tmp_path / "bench.json"
    other.write_text('{"benchmarks": []}')
    done = _mcpswarm("report", str(other), "--html", str(tmp_path / "x.html"))
    assert done.returncode == 2
    assert "schema is None, expected 'mcpswarm/1'" in done.stderr
    assert not (tmp_path / "x.html").exists()


def test_a_corrupt_histogram_is_a_usage_error(tmp_path: Path) -> None:
    doc = {"schema": "mcpswarm/1", "scenarios": [{"name": "a", "histogram": "not-base64!"}]}
    bad = tmp_path / "bad.json"
    bad.write_bytes(orjson.dumps(doc))
    done = _mcpswarm("report", str(bad), "--html", str(tmp_path / "x.html"))
    assert done.returncode == 2
    assert "a scenario is malformed" in done.stderr and "Traceback" not in done.stderr
