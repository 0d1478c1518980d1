"""HTML for the report: the summary table, one section per scenario, and the standalone page.

The same fragments go into the pytest-html report (``report.pytest_html``)
and into ``mcpswarm report FILE.json --html OUT.html``.  Everything is
inline: CSS in a ``<style>``, charts as SVG, no script, no external URL, so
the file reads the same when opened offline from disk.

The fragments are scoped under ``.mcpswarm`` so they do not fight the
host page's styles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any, Final

import orjson

from pytest_mcpswarm.report.capacity_charts import attribution_section, ceiling_section
from pytest_mcpswarm.report.figures import scenario_svgs
from pytest_mcpswarm.report.verdict import (
    Delta,
    Verdict,
    baseline_label,
    check_line,
    fmt_ms,
    fmt_number,
    fmt_pct,
    fmt_rate,
    verdict,
)

CSS: Final = """
.mcpswarm { font-family: Helvetica, Arial, sans-serif; color: #111; font-size: 13px; }
.mcpswarm h2 { font-size: 18px; margin: 18px 0 6px; color: #111; }
.mcpswarm h3 { font-size: 15px; margin: 14px 0 6px; color: #111; }
.mcpswarm p, .mcpswarm li { color: #222; }
.mcpswarm table.mcpswarm-table { border-collapse: collapse; margin: 4px 0 10px; }
.mcpswarm table.mcpswarm-table th, .mcpswarm table.mcpswarm-table td {
  border: 1px solid #d9d9d9; padding: 5px 8px; text-align: left; vertical-align: top; color: #111; }
.mcpswarm table.mcpswarm-table th { background: #f3f3f3; font-weight: bold; }
.mcpswarm td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.mcpswarm .badge { display: inline-block; padding: 2px 8px; border-radius: 3px; font-weight: bold;
  color: #fff; white-space: nowrap; }
.mcpswarm .badge.PASS { background: #1b7f3b; }
.mcpswarm .badge.FAIL { background: #b00020; }
.mcpswarm .badge.NOSLA { background: #6b6b6b; }
.mcpswarm .badge.bound { background: #b35900; }
.mcpswarm .reasons { margin: 0; padding-left: 16px; }
.mcpswarm .muted { color: #666; }
.mcpswarm a { color: #0645ad; }
.mcpswarm .worse { color: #b00020; font-weight: bold; }
.mcpswarm .ok { color: #1b7f3b; }
.mcpswarm .figures { display: flex; flex-wrap: wrap; gap: 6px; margin: 6px 0 10px; }
.mcpswarm .figure { border: 1px solid #ddd; border-radius: 4px; padding: 5px 10px; min-width: 92px; }
.mcpswarm .figure .k { font-size: 11px; color: #555; }
.mcpswarm .figure .v { font-size: 15px; font-weight: bold; color: #111; }
.mcpswarm .charts { display: flex; flex-wrap: wrap; gap: 10px; }
.mcpswarm .charts svg { border: 1px solid #e2e2e2; max-width: 100%; height: auto; }
.mcpswarm section.scenario { border-top: 2px solid #ccc; margin-top: 16px; }
.mcpswarm .banner { background: #fff3e0; border: 1px solid #b35900; padding: 6px 10px; color: #5a2d00; }
.mcpswarm pre { background: #f6f6f6; padding: 6px; white-space: pre-wrap; }
"""

#: Baseline deltas shown in the summary table (all of them go in the comparison table).
_SUMMARY_DELTAS: Final = ("p99", "rps", "error_rate")


def style() -> str:
    return f"<style>{CSS}</style>"


def badge(status: str) -> str:
    cls = status.replace(" ", "")
    return f'<span class="badge {cls}">{escape(status)}</span>'


def bound_badge() -> str:
    return '<span class="badge bound" title="the load generator was the bottleneck">GENERATOR-BOUND</span>'


def _rps_cell(v: Verdict) -> str:
    text = fmt_rate(v.rps)
    if v.offered_rps:
        text += f'<br><span class="muted">of {v.offered_rps:,.0f} offered</span>'
    return text


def _delta_text(d: Delta) -> str:
    pct = f" ({d.delta_pct:+.1f}%)" if d.delta_pct is not None else ""
    # A change of a percentage is in percentage points; "(+x%)" is the relative change.
    unit = "pp" if d.unit == "%" else d.unit
    sign = "+" if d.delta >= 0 else ""
    text = f"{d.metric} {sign}{fmt_number(d.delta)}{unit}{pct}"
    cls, mark = {True: ("worse", " REGRESSED"), False: ("ok", " ok"), None: ("", "")}[d.regressed]
    return f'<span class="{cls}">{escape(text + mark)}</span>'


def _deltas_cell(v: Verdict, has_compare: bool) -> str:
    if not has_compare:
        return ""
    shown = [d for d in v.deltas if d.metric in _SUMMARY_DELTAS or d.regressed]
    note = f'<span class="muted">{escape(v.baseline_note)}</span>' if v.baseline_note else ""
    if not shown:
        return f"<td>{note or 'no comparable metric'}</td>"
    return "<td>" + "<br>".join([*(_delta_text(d) for d in shown), *([note] if note else [])]) + "</td>"


def _generator_status(v: Verdict) -> str:
    if v.generator_bound:
        return bound_badge()
    return "not saturated" if v.generator_checked else '<span class="muted">not checked</span>'


def _bottleneck_cell(v: Verdict) -> str:
    if not v.bottleneck:
        return '<td><span class="muted">not attributed</span></td>'
    why = f'<br><span class="muted">{escape(v.bottleneck_why)}</span>' if v.bottleneck_why else ""
    return f"<td>{escape(v.bottleneck)}{why}</td>"


def summary_table(verdicts: Sequence[Verdict], *, has_compare: bool = False) -> str:
    """PASS/FAIL per scenario with reasons, key numbers, generator marks and baseline deltas."""
    head = ["Scenario", "Verdict", "Why", "Throughput", "p50", "p99", "Error rate", "Load generator"]
    has_bottleneck = any(v.bottleneck for v in verdicts)
    if has_bottleneck:
        head.append("Bottleneck")
    if has_compare:
        head.append("vs baseline")
    rows = []
    for v in verdicts:
        reasons = "".join(f"<li>{escape(r)}</li>" for r in v.reasons)
        gen = f'{_generator_status(v)}<br><span class="muted">{escape(v.generator_note or "")}</span>'
        where = escape(f"{v.profile} · {v.backend} · {v.target}")
        rows.append(
            f'<tr data-scenario="{escape(v.name)}" data-verdict="{escape(v.status)}">'
            f'<td><a href="#scenario-{escape(v.name)}"><b>{escape(v.name)}</b></a><br>'
            f'<span class="muted">{where}</span></td>'
            f"<td>{badge(v.status)}</td>"
            f'<td><ul class="reasons">{reasons}</ul></td>'
            f'<td class="num">{_rps_cell(v)}</td>'
            f'<td class="num">{fmt_ms(v.p50_ms)}</td>'
            f'<td class="num">{fmt_ms(v.p99_ms)}</td>'
            f'<td class="num">{fmt_pct(v.error_rate)}</td>'
            f"<td>{gen}</td>"
            f"{_bottleneck_cell(v) if has_bottleneck else ''}"
            f"{_deltas_cell(v, has_compare)}</tr>"
        )
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    return (
        f'<table class="mcpswarm-table mcpswarm-summary"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def compare_table(compare: Mapping[str, Any], verdicts: Sequence[Verdict]) -> str:
    """Every baseline delta; an unrecognised comparison is shown raw rather than dropped."""
    base = escape(baseline_label(compare))
    if compare.get("fail"):
        heading = f"<h3>Compared with {base} (regression gate: {escape(str(compare['fail']))})</h3>"
    else:
        heading = (
            f'<h3>Compared with {base}</h3><p class="muted">No regression gate was set, so these changes '
            "are for information; fail on them with --mcpswarm-compare-fail, e.g. p99:+20%.</p>"
        )
    rows = []
    for v in verdicts:
        for d in v.deltas:
            rows.append(
                f"<tr><td>{escape(v.name)}</td><td>{escape(d.metric)}</td>"
                f'<td class="num">{fmt_number(d.baseline)}{escape(d.unit)}</td>'
                f'<td class="num">{fmt_number(d.current)}{escape(d.unit)}</td><td>{_delta_text(d)}</td>'
                f"<td>{escape(d.tolerance or '—')}</td></tr>"
            )
    if not rows:
        raw = escape(orjson.dumps(compare, option=orjson.OPT_INDENT_2).decode())
        return f"{heading}<pre>{raw}</pre>"
    return (
        f"{heading}"
        '<table class="mcpswarm-table mcpswarm-compare"><thead><tr><th>Scenario</th><th>Metric</th>'
        "<th>Baseline</th><th>This run</th><th>Change</th><th>Allowed</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def summary(scenarios: Iterable[Mapping[str, Any]], compare: Mapping[str, Any] | None = None) -> str:
    """The block that goes at the top of every report (style included)."""
    verdicts = [verdict(s, compare) for s in scenarios]
    failed = sum(v.status == "FAIL" for v in verdicts)
    bound = sum(v.generator_bound for v in verdicts)
    counts = f"{len(verdicts)} scenario{'s' if len(verdicts) != 1 else ''}, {failed} failed the SLA"
    if bound:
        counts += f", {bound} limited by the load generator"
    parts = [
        style(),
        '<div class="mcpswarm mcpswarm-summary-block">',
        f"<h2>Load test results</h2><p>{escape(counts)}.</p>",
        summary_table(verdicts, has_compare=bool(compare)),
    ]
    if compare:
        parts.append(compare_table(compare, verdicts))
    parts.append("</div>")
    return "".join(parts)


def _figure(key: str, value: str) -> str:
    return f'<div class="figure"><div class="k">{escape(key)}</div><div class="v">{escape(value)}</div></div>'


def _key_figures(scenario: Mapping[str, Any], v: Verdict) -> str:
    lat = scenario.get("latency_ms") or {}
    req = scenario.get("requests") or {}
    conns = scenario.get("connections") or {}
    lag = ((scenario.get("generator") or {}).get("schedule_lag_ms") or {}).get("p99")
    items = [
        ("throughput", fmt_rate(v.rps)),
        ("offered", fmt_rate(v.offered_rps)),
        ("p50", fmt_ms(lat.get("p50"))),
        ("p95", fmt_ms(lat.get("p95"))),
        ("p99", fmt_ms(lat.get("p99"))),
        ("p99.9", fmt_ms(lat.get("p999"))),
        ("max", fmt_ms(lat.get("max"))),
        ("error rate", fmt_pct(v.error_rate)),
        ("requests ok", f"{int(req.get('ok', 0)):,}"),
        ("timeouts", f"{int(req.get('timeouts', 0)):,}"),
        ("not sent", f"{int(req.get('not_sent', 0)):,}"),
        ("peak connections", f"{int(conns.get('peak', 0)):,}"),
        ("schedule lag p99", fmt_ms(lag if isinstance(lag, int | float) else None)),
    ]
    return '<div class="figures">' + "".join(_figure(k, val) for k, val in items) + "</div>"


def _checks_table(scenario: Mapping[str, Any]) -> str:
    checks = (scenario.get("sla") or {}).get("checks") or []
    if not checks:
        return '<p class="muted">No SLA was set for this scenario.</p>'
    rows = "".join(
        f"<tr><td>{badge('PASS' if c.get('passed') else 'FAIL')}</td><td>{escape(check_line(c))}</td></tr>"
        for c in checks
    )
    return f'<table class="mcpswarm-table mcpswarm-checks"><tbody>{rows}</tbody></table>'


def _errors_table(scenario: Mapping[str, Any]) -> str:
    items = {**(scenario.get("errors_by_type") or {}), **(scenario.get("connect_errors") or {})}
    items |= {f"not sent: {k}": n for k, n in (scenario.get("not_sent_by_reason") or {}).items()}
    if not items:
        return ""
    rows = "".join(
        f'<tr><td>{escape(str(k))}</td><td class="num">{int(n):,}</td></tr>' for k, n in sorted(items.items())
    )
    return (
        '<h3>Errors by type</h3><table class="mcpswarm-table mcpswarm-errors">'
        f"<thead><tr><th>type</th><th>count</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def scenario_section(scenario: Mapping[str, Any], compare: Mapping[str, Any] | None = None) -> str:
    """Key figures, SLA checks, errors and the five charts of one scenario."""
    v = verdict(scenario, compare)
    params = scenario.get("params") or {}
    meta = (
        f"profile {v.profile} · {scenario.get('transport', '?')} · target {v.target} · backend {v.backend}"
        f" · {scenario.get('duration_s', 0):g} s · {params.get('workers', '?')} generator worker(s)"
    )
    name = escape(v.name)
    parts = [
        f'<section class="mcpswarm scenario" id="scenario-{name}" data-scenario="{name}">',
        f"<h2>{escape(v.name)} {badge(v.status)}{' ' + bound_badge() if v.generator_bound else ''}</h2>",
        f'<p class="muted">{escape(meta)}</p>',
    ]
    if v.generator_bound:
        parts.append(
            '<p class="banner">The load generator was saturated during this run: latency and throughput '
            f"below show its limit, not the server's. {escape(v.generator_note or '')}</p>"
        )
    parts += [
        _key_figures(scenario, v),
        _checks_table(scenario),
        _errors_table(scenario),
        '<div class="charts">',
        *scenario_svgs(scenario),
        "</div>",
    ]
    if isinstance(scenario.get("attribution"), Mapping):
        parts.append(attribution_section(scenario["attribution"]))
    parts.append("</section>")
    return "".join(parts)


def _environment(doc: Mapping[str, Any]) -> str:
    m = doc.get("machine_info") or {}
    c = doc.get("commit_info") or {}
    commit = c.get("id")
    commit_text = (
        f"commit {str(commit)[:10]}{' (dirty)' if c.get('dirty') else ''}" if commit else "no git commit"
    )
    bits = [
        f"{m.get('node', '?')}: {m.get('system', '')} {m.get('release', '')} {m.get('machine', '')}".strip(),
        f"{m.get('cpu_count', '?')} CPUs",
        f"Python {m.get('python', '?')}",
        f"mcpswarm {m.get('mcpswarm', '?')}",
        commit_text,
        f"created {doc.get('created', '?')}",
    ]
    return f'<p class="muted">{escape(" · ".join(bits))}</p>'


def document_html(doc: Mapping[str, Any], *, title: str = "mcpswarm report") -> str:
    """The whole standalone page for an ``mcpswarm/1`` document: summary first, then each scenario."""
    scenarios: list[Mapping[str, Any]] = doc.get("scenarios") or []
    compare = doc.get("compare")
    compare = compare if isinstance(compare, Mapping) else None
    body = [
        f'<div class="mcpswarm"><h1>{escape(title)}</h1>{_environment(doc)}</div>',
        summary(scenarios, compare),
        *([ceiling_section(doc["ceiling"])] if isinstance(doc.get("ceiling"), Mapping) else []),
        *(scenario_section(s, compare) for s in scenarios),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>"
        "<style>body { margin: 16px 24px; background: #fff; } "
        "h1 { font-size: 24px; margin: 0 0 4px; }</style>"
        f"</head><body>{''.join(body)}</body></html>\n"
    )
