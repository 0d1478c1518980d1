"""pytest-html 4.x hooks: the load-test results inside ``pytest --html=report.html``.

The plugin registers this module only when pytest-html is active (its hook
names are unknown otherwise).  It adds:

- four columns to every results row: throughput, p99, error rate and SLA;
- to each benchmark test, an HTML extra with the scenario's key figures,
  SLA checks and five inline SVG charts (so ``--self-contained-html``
  stays one file: nothing is written beside it);
- at the top of the summary, the table of every scenario's verdict with
  its reasons, generator-bound marks and baseline deltas;
- to the environment table, the targets, backends and versions.

Where the data comes from: the plugin stores each test's scenario dict (or
list of them, when a test runs several) in ``item.stash[plugin.SCENARIO_KEY]``
and the session object (with ``.scenarios`` and ``.compare``) in
``config.stash[plugin.SESSION_KEY]``.  The scenarios also travel on the test
report as ``report.mcpswarm_scenarios`` (plain JSON data, so they survive
pytest-xdist), which is how the row hook sees them and how the summary finds
them when the session object has none.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from html import escape
from typing import Any, Final

import pytest

from pytest_mcpswarm import __version__
from pytest_mcpswarm.report import html as report_html
from pytest_mcpswarm.report.verdict import fmt_ms, fmt_pct, fmt_rate, verdict

#: The attribute of a ``TestReport`` that carries its scenario dict.
REPORT_ATTR: Final = "mcpswarm_scenarios"
_SEEN: Final = pytest.StashKey[list[dict[str, Any]]]()
#: pytest-html puts the environment table above the summary; a reader wants the verdicts first.
#: Only order changes: the summary and results come first, the environment moves to the end.
LAYOUT_CSS: Final = (
    "<style>body { display: flex; flex-direction: column; align-items: stretch; }"
    " body > * { order: 1; } #environment-header, #environment { order: 3; align-self: flex-start; }"
    " footer { order: 4; }</style>"
)
_COLUMNS: Final = (("rps", "Throughput"), ("p99", "p99"), ("error_rate", "Error rate"), ("sla", "SLA"))


def _plugin_key(name: str) -> Any:
    """``pytest_mcpswarm.plugin.<name>`` if the plugin defines it (looked up late: no import cycle)."""
    from pytest_mcpswarm import plugin

    return getattr(plugin, name, None)


def item_scenarios(item: pytest.Item) -> list[dict[str, Any]]:
    """The scenario dicts the test ran: one dict or a list of them in ``item.stash[SCENARIO_KEY]``."""
    key = _plugin_key("SCENARIO_KEY")
    value = item.stash.get(key, None) if key is not None else None
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [s for s in value if isinstance(s, dict)]
    return []


def report_scenarios(report: pytest.TestReport) -> list[dict[str, Any]]:
    value = getattr(report, REPORT_ATTR, None)
    return [s for s in value if isinstance(s, dict)] if isinstance(value, list) else []


def session_data(config: pytest.Config) -> tuple[list[dict[str, Any]], Mapping[str, Any] | None]:
    """The session's scenarios and baseline comparison; scenarios seen on reports as a fallback."""
    key = _plugin_key("SESSION_KEY")
    session = config.stash.get(key, None) if key is not None else None
    scenarios = list(getattr(session, "scenarios", None) or [])
    compare = getattr(session, "compare", None)
    if not scenarios:
        seen: list[dict[str, Any]] = config.stash.get(_SEEN, [])
        scenarios = list(seen)
    return scenarios, compare if isinstance(compare, Mapping) else None


class _Collector:
    """Keeps the scenarios of the reports this process sees (the controller's, under xdist)."""

    def __init__(self, seen: list[dict[str, Any]]) -> None:
        self.seen = seen

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seen.extend(report_scenarios(report))


def pytest_configure(config: pytest.Config) -> None:
    seen: list[dict[str, Any]] = []
    config.stash[_SEEN] = seen
    config.pluginmanager.register(_Collector(seen), "mcpswarm-html-collector")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    scenarios = item_scenarios(item) if report.when == "call" else []
    if scenarios:
        from pytest_html import extras  # type: ignore[import-untyped]

        setattr(report, REPORT_ATTR, scenarios)
        compare = session_data(item.config)[1]
        sections = [extras.html(report_html.scenario_section(s, compare)) for s in scenarios]
        # pytest-html's own (outer) wrapper merges report.extras into the report after us.
        setattr(report, "extras", [*getattr(report, "extras", []), *sections])  # noqa: B010
    return report


def pytest_html_results_table_header(cells: list[str]) -> None:
    # After "Test" and "Duration": Result, Test, Duration, <ours>, Links.
    at = min(3, len(cells))
    cells[at:at] = [f'<th class="mcpswarm-col">{escape(title)}</th>' for _, title in _COLUMNS]


def row_values(scenario: Mapping[str, Any]) -> list[str]:
    """The four cells' HTML for one scenario: throughput, p99, error rate, SLA verdict."""
    v = verdict(scenario)
    color = {"PASS": "green", "FAIL": "red"}.get(v.status, "#666")
    sla = f'<b style="color:{color}">{escape(v.status)}</b>'
    if v.generator_bound:
        sla += ' <b style="color:#b35900">GENERATOR-BOUND</b>'
    return [escape(fmt_rate(v.rps)), escape(fmt_ms(v.p99_ms)), escape(fmt_pct(v.error_rate)), sla]


def pytest_html_results_table_row(report: pytest.TestReport, cells: list[str]) -> None:
    per = [row_values(s) for s in report_scenarios(report)]
    # A test that ran several scenarios shows one line per scenario in each cell.
    values = ["<br>".join(col) for col in zip(*per, strict=True)] if per else ["" for _ in _COLUMNS]
    at = min(3, len(cells))
    cells[at:at] = [
        f'<td class="col-mcpswarm-{name}">{html}</td>'
        for (name, _), html in zip(_COLUMNS, values, strict=True)
    ]


def _environment(config: pytest.Config, scenarios: list[dict[str, Any]]) -> None:
    """Targets, backends and versions into pytest-metadata's table (read when the report is written)."""
    try:
        from pytest_metadata.plugin import metadata_key  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - pytest-html depends on pytest-metadata
        return
    metadata = config.stash.get(metadata_key, None)
    if metadata is None:
        return

    def distinct(key: str) -> str:
        return ", ".join(sorted({str(s.get(key)) for s in scenarios if s.get(key) is not None}))

    metadata["mcpswarm"] = __version__
    for key, label in (("target", "targets"), ("backend", "backends"), ("transport", "transports")):
        if value := distinct(key):
            metadata[f"mcpswarm {label}"] = value
    versions = sorted({str((s.get("params") or {}).get("protocol_version")) for s in scenarios} - {"None"})
    if versions:
        metadata["MCP protocol versions"] = ", ".join(versions)


def pytest_html_results_summary(
    prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
) -> None:
    del summary, postfix
    scenarios, compare = session_data(session.config)
    if not scenarios:
        return
    _environment(session.config, scenarios)
    prefix.append(LAYOUT_CSS + report_html.summary(scenarios, compare))
