"""Show a ``selfbench client`` outcome: one table of cases, then each goal with its median and spread."""

from __future__ import annotations

import datetime as dt
import statistics
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from pytest_mcpswarm.report import jsonfile
from pytest_mcpswarm.selfbench import client as c


def _fmt(s: tuple[float, float, float] | None, pattern: str) -> str:
    if s is None:
        return "-"
    return f"{pattern.format(s[0])} ({pattern.format(s[1])}..{pattern.format(s[2])})"


def goals(out: c.Outcome) -> list[dict[str, Any]]:
    """Each goal: name, figure (median, min, max), goal text, met (on the median)."""
    rows: list[dict[str, Any]] = []
    overhead = c.spread(out.ratios("ws-engine", "ws-raw", lambda e, r: e.cpu_us / r.cpu_us))
    rows.append(
        {
            "goal": "(a) WS engine CPU/request vs raw loop",
            "figure": overhead,
            "format": "{:.2f}x",
            "target": f"<= {c.GOAL_WS_OVERHEAD}x",
            "met": overhead is not None and overhead[0] <= c.GOAL_WS_OVERHEAD,
        }
    )
    per_core = c.spread([r.per_core for r in out.runs.get("ws-engine", [])])
    rows.append(
        {
            "goal": "(a) WS engine tools/call per client core",
            "figure": per_core,
            "format": "{:,.0f}/s",
            "target": f">= {c.GOAL_WS_PER_CORE:,.0f}/s",
            "met": per_core is not None and per_core[0] >= c.GOAL_WS_PER_CORE,
        }
    )
    bombs = out.runs.get("bomb-engine", [])
    rate = c.spread([r.rps for r in bombs])
    clean = all(r.extra["totals"]["not_sent"] == 0 and r.extra["accounting_ok"] for r in bombs)
    rows.append(
        {
            "goal": "(b) ping from one process, not_sent == 0",
            "figure": rate,
            "format": "{:,.0f}/s",
            "target": f">= {c.GOAL_BOMB_RATE * 0.99:,.0f}/s, not_sent 0",
            "met": bool(bombs) and rate is not None and rate[0] >= c.GOAL_BOMB_RATE * 0.99 and clean,
        }
    )
    http = c.spread(out.ratios("http-engine", "http-locust", lambda e, lo: e.per_core / lo.per_core))
    rows.append(
        {
            "goal": "(c) HTTP req/s per core vs Locust",
            "figure": http,
            "format": "{:.2f}x",
            "target": f">= {c.GOAL_HTTP_VS_LOCUST}x",
            "met": http is not None and http[0] >= c.GOAL_HTTP_VS_LOCUST,
        }
    )
    workers = c.spread(out.ratios("workers-2", "workers-1", lambda two, one: two.cpu_us / one.cpu_us))
    rows.append(
        {
            "goal": "(d) CPU/request, 2 workers vs 1",
            "figure": workers,
            "format": "{:.3f}x",
            "target": f"<= {c.GOAL_WORKERS}x",
            "met": workers is not None and workers[0] <= c.GOAL_WORKERS,
        }
    )
    return rows


def raw_split(out: c.Outcome) -> tuple[float, float, float] | None:
    """CPU/request of the raw loop in 2 processes over 1, per round: (d) without our code."""
    return c.spread(out.ratios("split-raw-2", "split-raw-1", lambda two, one: two.cpu_us / one.cpu_us))


def reference(out: c.Outcome) -> str | None:
    """(d)'s reference line, None without the ``split-raw-*`` runs."""
    split = raw_split(out)
    if split is None:
        return None
    return (
        f"(d) reference: the raw picows loop split the same way (8 conns x 10K/s, 2 processes "
        f"vs 1): {_fmt(split, '{:.3f}x')}"
    )


def render(out: c.Outcome, settings: c.Settings, console: Console) -> None:
    for note in out.notes:
        console.print(note, highlight=False, markup=False)
    m = out.machine
    where = (
        f"client on core {m['client_core']}, reference server on core {m['server_core']}"
        if m.get("server_core") is not None
        else "unpinned"
    )
    console.print(
        f"selfbench client: {settings.rounds} round(s), {settings.duration:g} s measured after "
        f"{settings.warmup:g} s warm-up per case; {where}; engine reply path: "
        f"{m.get('engine_reply_path', '?')}; figures: median (min..max)",
        highlight=False,
        markup=False,
    )
    table = Table(box=box.SIMPLE_HEAD)
    for col in ("case", "req/s", "client CPU", "CPU/req", "req/s per core", "p50", "p99"):
        table.add_column(col, justify="left" if col == "case" else "right")
    labels = {k: v.label for k, v in c.cases(0, settings.warmup, settings.duration).items()}
    for key, runs in out.runs.items():
        p50 = [r.extra["p50_ms"] for r in runs if r.extra.get("p50_ms") is not None]
        p99 = [r.extra["p99_ms"] for r in runs if r.extra.get("p99_ms") is not None]
        table.add_row(
            key,
            _fmt(c.spread([r.rps for r in runs]), "{:,.0f}"),
            f"{statistics.median(r.cpu_s / r.seconds for r in runs):.0%}",
            f"{statistics.median(r.cpu_us for r in runs):.2f} µs",
            _fmt(c.spread([r.per_core for r in runs]), "{:,.0f}"),
            f"{statistics.median(p50):.2f} ms" if p50 else "-",
            f"{statistics.median(p99):.2f} ms" if p99 else "-",
        )
    console.print(table)
    for key in out.runs:
        console.print(f"  {key}: {labels.get(key, key)}", highlight=False, markup=False)
    for row in goals(out):
        if row["figure"] is None:
            continue  # a goal this run did not measure (--only)
        verdict = "met" if row["met"] else "NOT met"
        console.print(
            f"{row['goal']}: {_fmt(row['figure'], row['format'])} (goal {row['target']}: {verdict})",
            highlight=False,
            markup=False,
        )
    line = reference(out)
    if line is not None:
        console.print(line, highlight=False, markup=False)
    for key, command in out.commands.items():
        console.print(f"  {key}: {command}", highlight=False, markup=False, style="dim")


def goals_met(out: c.Outcome) -> bool:
    return not out.failures and all(row["met"] for row in goals(out) if row["figure"] is not None)


def write_json(out: c.Outcome, settings: c.Settings, path: Path) -> None:
    doc = {
        "kind": "mcpswarm.selfbench.client",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "settings": {
            "warmup_s": settings.warmup,
            "duration_s": settings.duration,
            "rounds": settings.rounds,
            "only": list(settings.only),
        },
        "machine": out.machine,
        "notes": out.notes,
        "runs": {
            key: [{"requests": r.requests, "seconds": r.seconds, "cpu_s": r.cpu_s, **r.extra} for r in runs]
            for key, runs in out.runs.items()
        },
        "goals": [{k: v for k, v in row.items() if k != "format"} for row in goals(out)],
        "workers_reference": {"raw_split": raw_split(out), "line": reference(out)},
        "commands": out.commands,
    }
    jsonfile.write_json(path, doc)
