"""The HTML fragments and the standalone page: structure, escaping, and no external resource."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from pytest_mcpswarm.report.html import document_html, scenario_section, summary

Factory = Callable[..., dict[str, Any]]


class _Scan(HTMLParser):
    """Collects summary rows, external references and tags, as a browser would parse them."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str | None]] = []
        self.refs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "tr" and "data-scenario" in a:
            self.rows.append(a)
        for key in ("src", "href"):
            if a.get(key):
                self.refs.append(str(a[key]))


def _scan(html: str) -> _Scan:
    scan = _Scan()
    scan.feed(html)
    return scan


def _failing_sla(check: Any) -> dict[str, Any]:
    return {"passed": False, "message": "", "checks": [check("p99", "<", 1.0, 80.0, "ms", passed=False)]}


def test_summary_has_one_row_per_scenario_with_its_verdict(scenario: Factory, sla_check: Any) -> None:
    passing = {
        "passed": True,
        "message": "",
        "checks": [sla_check("p99", "<", 500.0, 80.0, "ms", passed=True)],
    }
    html = summary([scenario("a", sla=passing), scenario("b", sla=_failing_sla(sla_check)), scenario("c")])
    rows = _scan(html).rows
    assert [(r["data-scenario"], r["data-verdict"]) for r in rows] == [
        ("a", "PASS"),
        ("b", "FAIL"),
        ("c", "NO SLA"),
    ]
    assert "3 scenarios, 1 failed the SLA." in html
    assert "p99 &lt; 1ms: actual 80ms" in html
    assert "vs baseline" not in html


def test_summary_marks_generator_bound_runs(scenario: Factory) -> None:
    html = summary([scenario("a", generator_bound=True)])
    assert "GENERATOR-BOUND" in html and "1 limited by the load generator" in html
    assert "GENERATOR-BOUND" not in summary([scenario("a", generator_bound=False)])


def test_summary_shows_baseline_deltas(scenario: Factory) -> None:
    compare = {"baseline": "main", "scenarios": {"a": {
        "p99": {"baseline": 10.0, "current": 12.5, "unit": "ms", "regressed": True},
        "rps": {"baseline": 500.0, "current": 490.0, "regressed": False},
        "p50": {"baseline": 1.0, "current": 1.1},
    }}}  # fmt: skip
    html = summary([scenario("a"), scenario("new")], compare)
    assert "vs baseline" in html and "Compared with main" in html
    assert "p99 +2.5ms (+25.0%) REGRESSED" in html
    assert "rps -10 (-2.0%)" in html
    assert "not in the baseline" in html  # scenario "new"
    # p50 is not a summary metric, but the full comparison table lists it.
    assert html.count("p50 +0.1") == 1


def test_an_unknown_comparison_is_shown_raw_not_dropped(scenario: Factory) -> None:
    html = summary([scenario("a")], {"something": ["else"]})
    assert "Compared with the baseline" in html and "&quot;something&quot;" in html


def test_scenario_section_has_figures_checks_and_five_charts(scenario: Factory, sla_check: Any) -> None:
    html = scenario_section(scenario("a", sla=_failing_sla(sla_check), errors=7))
    assert html.count("<svg") == 5
    assert re.findall(r'data-chart="(\w+)"', html) == [
        "latency",
        "rps",
        "distribution",
        "errors",
        "connections",
    ]
    assert "Errors by type" in html and "mcp_error" in html
    assert "7 errors in the whole run" in html
    assert 'id="scenario-a"' in html


def test_names_and_targets_are_escaped(scenario: Factory) -> None:
    s = scenario('<img src=x onerror="alert(1)">', target="ws://<b>")
    html = document_html({"scenarios": [s]})
    scan = _scan(html)
    assert "img" not in scan.tags
    assert "ws://&lt;b&gt;" in html and "ws://<b>" not in html


def test_standalone_page_is_self_contained(scenario: Factory) -> None:
    html = document_html(
        {"schema": "mcpswarm/1", "machine_info": {"node": "box"}, "scenarios": [scenario("a")]}
    )
    scan = _scan(html)
    assert "script" not in scan.tags
    assert all(ref.startswith("#") for ref in scan.refs), scan.refs
    assert html.index("Load test results") < html.index('<section class="mcpswarm scenario"')
    assert "box" in html


def test_compare_from_the_document_is_rendered(scenario: Factory) -> None:
    doc = {
        "scenarios": [scenario("a")],
        "compare": {"scenarios": {"a": {"p99": {"baseline": 1, "current": 2}}}},
    }
    assert "vs baseline" in document_html(doc)


def test_the_plugin_comparison_is_read(scenario: Factory) -> None:
    from pytest_mcpswarm.compare import Comparison

    base = scenario("a")
    slower = scenario("a", latencies_us=[v * 2 for v in range(1000, 101_000, 100)])
    comparison = Comparison(Path("/runs/0001_main.json"), {"scenarios": [base]}, "p99:+10%")
    comparison.add(slower)
    comparison.add(scenario("new"))
    html = summary([slower, scenario("new")], comparison.data)
    assert "Compared with /runs/0001_main.json (regression gate: p99:+10%)" in html
    assert re.search(r"p99 \+\d+(\.\d+)?ms \(\+\d+\.\d%\) REGRESSED", html), html
    assert "not in the baseline" in html
    rows = _scan(html).rows
    assert [r["data-scenario"] for r in rows] == ["a", "new"]


def test_summary_names_the_bottleneck_and_why_when_attributed(scenario: Factory) -> None:
    cpu = scenario("cpu")
    cpu["attribution"] = {
        "label": "server CPU",
        "line": "bottleneck: server CPU (server at 0.98 cores from t=3 s)",
    }
    html = summary([cpu, scenario("plain")])
    assert "<th>Bottleneck</th>" in html
    assert "server CPU<br>" in html and "server at 0.98 cores from t=3 s" in html
    assert "not attributed" in html  # the scenario without attribution says so
    assert "<th>Bottleneck</th>" not in summary([scenario("plain")])


def test_an_ungated_comparison_says_the_changes_are_information(scenario: Factory) -> None:
    compare = {"baseline": "main", "scenarios": {"a": {"rps": {"baseline": 13400.0, "current": 12100.0}}}}
    html = summary([scenario("a")], compare)
    assert "No regression gate was set" in html and "--mcpswarm-compare-fail" in html
    assert "13,400" in html and "12,100" in html and "e+0" not in html
    assert "rps -1,300 (-9.7%)" in html
