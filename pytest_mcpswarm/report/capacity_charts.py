"""Charts and HTML of capacity results: the ceiling's knee, and bottleneck attribution over time.

Built from the JSON (the ``ceiling`` object of a document, the ``attribution``
object of a scenario), drawn with ``report.charts`` like every other chart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any, Final

from pytest_mcpswarm.report.charts import PALETTE, Axis, Chart, Point, Series, Threshold, render

_TO_MS: Final = {"us": 0.001, "µs": 0.001, "ms": 1.0, "s": 1000.0}
_OFFERED: Final = Axis("offered rate (req/s)")


def _steps(ceiling: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    steps: list[Mapping[str, Any]] = list(ceiling.get("steps") or [])
    return sorted(steps, key=lambda s: float(s.get("offered_rps") or 0))


def _sla_latency_limits(ceiling: Mapping[str, Any]) -> list[Threshold]:
    seen: dict[str, Threshold] = {}
    for step in ceiling.get("steps") or []:
        for check in step.get("sla") or []:
            metric = str(check.get("metric", ""))
            factor = _TO_MS.get(str(check.get("unit")))
            if metric.split("[", 1)[0].startswith("p") and factor is not None:
                label = f"SLA {metric} {check['op']} {check['threshold']:g}{check['unit']}"
                seen[label] = Threshold(label, float(check["threshold"]) * factor)
    return list(seen.values())


def _column(steps: Sequence[Mapping[str, Any]], key: str) -> list[Point]:
    out: list[Point] = []
    for s in steps:
        value = s.get(key)
        out.append((float(s["offered_rps"]), None if value is None else float(value)))
    return out


def knee_chart(ceiling: Mapping[str, Any]) -> Chart:
    """p50 and p99 (steady state) against the offered rate of every step."""
    steps = _steps(ceiling)
    rps = ceiling.get("rps")
    return Chart(
        key="knee",
        title="Latency against offered rate (the knee)",
        x=_OFFERED,
        y=Axis("latency (ms)"),
        series=[
            Series("p50", _column(steps, "p50_ms"), PALETTE[0], "ms"),
            Series("p99", _column(steps, "p99_ms"), PALETTE[2], "ms"),
        ],
        thresholds=_sla_latency_limits(ceiling),
        empty_note="no step completed a request",
        note=f"ceiling {float(rps):,.0f} req/s" if isinstance(rps, int | float) else "no step met the SLA",
    )


def throughput_chart(ceiling: Mapping[str, Any]) -> Chart:
    """Answered against offered: on the diagonal below the knee, flat at the server's limit above it."""
    steps = _steps(ceiling)
    return Chart(
        key="answered",
        title="Answered against offered rate",
        x=_OFFERED,
        y=Axis("answered (req/s)"),
        series=[
            Series("answered", _column(steps, "achieved_rps"), PALETTE[3], "req/s"),
            Series("offered", _column(steps, "offered_rps"), "#777777", "req/s"),
        ],
        empty_note="no steps",
    )


def ceiling_section(ceiling: Mapping[str, Any]) -> str:
    """The ceiling's verdict, its steps table and the two charts."""
    rps = ceiling.get("rps")
    head = (
        f"Ceiling: {float(rps):,.0f} req/s"
        if isinstance(rps, int | float)
        else "Ceiling: no step met the SLA"
    )
    rows = []
    for s in ceiling.get("steps") or []:
        p50, p99 = s.get("p50_ms"), s.get("p99_ms")
        gen = "; ".join(s.get("generator_reasons") or [])
        rows.append(
            "<tr>"
            f"<td>{escape(str(s.get('phase', '')))}</td>"
            f'<td class="num">{float(s["offered_rps"]):,.0f}</td>'
            f'<td class="num">{float(s.get("achieved_rps") or 0):,.0f}</td>'
            f'<td class="num">{"—" if p50 is None else f"{p50:.2f}"}</td>'
            f'<td class="num">{"—" if p99 is None else f"{p99:.2f}"}</td>'
            f'<td class="num">{float(s.get("error_rate") or 0):.2%}</td>'
            f"<td>{'PASS' if s.get('passed') else 'FAIL'}</td>"
            f"<td>{escape(gen)}</td></tr>"
        )
    table = (
        '<table class="mcpswarm-table mcpswarm-ceiling"><thead><tr><th>phase</th><th>offered req/s</th>'
        "<th>answered req/s</th><th>p50 ms</th><th>p99 ms</th><th>errors</th><th>SLA</th>"
        f"<th>generator-bound because</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    sla = escape(str(ceiling.get("sla", "")))
    why = escape(str(ceiling.get("stopped_because", "")))
    return (
        '<section class="mcpswarm ceiling" id="ceiling">'
        f"<h2>{escape(head)}</h2><p>SLA <code>{sla}</code> · target {escape(str(ceiling.get('target', '')))}"
        f" · stopped: {why}</p>{table}"
        f'<div class="charts">{render(knee_chart(ceiling))}{render(throughput_chart(ceiling))}</div>'
        "</section>"
    )


_TIME: Final = Axis("time since start (s)", unit="s")


def _sampled(samples: Sequence[Mapping[str, Any]], key: str, scale: float = 1.0) -> list[Point]:
    out: list[Point] = []
    for s in samples:
        value = s.get(key)
        out.append((float(s["t"]), None if value is None else float(value) * scale))
    return out


def attribution_charts(att: Mapping[str, Any]) -> list[Chart]:
    """Server and client side by side over time: CPU, memory, network, connections."""
    rows: Sequence[Mapping[str, Any]] = att.get("samples") or []
    cpu_limit = float((att.get("thresholds") or {}).get("cpu", 0.9))
    if any("server_cpu_share_max" in r or "client_cpu_share_max" in r for r in rows):
        # Swarm replicas may be limited below a core: the verdict reads each one against its
        # limit, so this chart does too, and the cores used go in a chart of their own.
        charts = [
            Chart(
                key="resources-cpu",
                title="CPU: busiest replica, share of its CPU limit (or of a core)",
                x=_TIME,
                y=Axis("% of limit"),
                series=[
                    Series("server replica", _sampled(rows, "server_cpu_share_max", 100), PALETTE[2], "%"),
                    Series("generator replica", _sampled(rows, "client_cpu_share_max", 100), PALETTE[0], "%"),
                ],
                thresholds=[Threshold(f"saturated: {cpu_limit:.0%} of the limit", cpu_limit * 100)],
            ),
            Chart(
                key="resources-cpu-cores",
                title="CPU used by all replicas (cores)",
                x=_TIME,
                y=Axis("cores"),
                series=[
                    Series("server, all", _sampled(rows, "server_cpu"), PALETTE[1], "cores"),
                    Series("generator, all", _sampled(rows, "client_cpu"), PALETTE[5], "cores"),
                ],
            ),
        ]
    else:
        charts = [
            Chart(
                key="resources-cpu",
                title="CPU: server and generator (cores)",
                x=_TIME,
                y=Axis("cores"),
                series=[
                    Series("server, busiest process", _sampled(rows, "server_cpu_max"), PALETTE[2], "cores"),
                    Series("server, all", _sampled(rows, "server_cpu"), PALETTE[1], "cores"),
                    Series(
                        "generator, busiest process", _sampled(rows, "client_cpu_max"), PALETTE[0], "cores"
                    ),
                    Series("generator, all", _sampled(rows, "client_cpu"), PALETTE[5], "cores"),
                ],
                thresholds=[Threshold(f"saturated: {cpu_limit:.0%} of a core", cpu_limit)],
            ),
        ]
    charts += [
        Chart(
            key="resources-memory",
            title="Memory (RSS, MiB)",
            x=_TIME,
            y=Axis("MiB"),
            series=[
                Series("server", _sampled(rows, "server_rss_mb"), PALETTE[2], "MiB"),
                Series("generator", _sampled(rows, "client_rss_mb"), PALETTE[0], "MiB"),
            ],
        ),
    ]
    if any("net_tx_bps" in r for r in rows):
        link = att.get("link_bps")
        charts.append(
            Chart(
                key="resources-network",
                title=f"Network through {att.get('iface') or '?'} (Mbit/s)",
                x=_TIME,
                y=Axis("Mbit/s"),
                series=[
                    Series("sent (tx)", _sampled(rows, "net_tx_bps", 1e-6), PALETTE[3], "Mbit/s"),
                    Series("received (rx)", _sampled(rows, "net_rx_bps", 1e-6), PALETTE[4], "Mbit/s"),
                ],
                thresholds=[Threshold(f"link {float(link) / 1e6:g} Mbit/s", float(link) / 1e6)]
                if link
                else [],
            )
        )
    if any("server_connections" in r for r in rows):
        charts.append(
            Chart(
                key="resources-connections",
                title="Server's open connections",
                x=_TIME,
                y=Axis("connections", integer=True),
                series=[Series("open", _sampled(rows, "server_connections"), PALETTE[3])],
            )
        )
    return charts


def attribution_section(att: Mapping[str, Any]) -> str:
    """The one-line verdict, error types and the resource charts of one scenario."""
    errors = att.get("errors_by_type") or {}
    err = ", ".join(f"{escape(str(k))} x{int(n):,}" for k, n in sorted(errors.items())) or "none"
    return (
        '<div class="mcpswarm attribution"><h3>Bottleneck</h3>'
        f'<p class="verdict" data-verdict="{escape(str(att.get("verdict", "")))}"><b>'
        f'{escape(str(att.get("line", "")))}</b></p><p class="muted">error types: {err}</p>'
        f'<div class="charts">{"".join(render(c) for c in attribution_charts(att))}</div></div>'
    )
