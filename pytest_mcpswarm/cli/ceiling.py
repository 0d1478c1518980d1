"""``mcpswarm ceiling``: the highest sustained rate that still meets an SLA, and why the search stopped."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pytest_mcpswarm.capacity.ceiling import DEFAULT_START_RPS, search_ceiling
from pytest_mcpswarm.capacity.search import GeneratorRule, StepResult
from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.load.profiles import BUILTIN_PROFILES, get_profile, load_profiles, override
from pytest_mcpswarm.report.jsonfile import check_writable, write_json


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "ceiling",
        help="find the highest rate a server sustains within an SLA",
        description="Step the offered rate up geometrically, then bisect between the last pass and the "
        "first fail, judging each step on its steady state (the warm-up seconds are left out). Stops early "
        "on errors and when the load generator itself becomes the bottleneck, and says so.",
    )
    p.add_argument("--target", required=True, help="ws://HOST:PORT/mcp/ws, http://HOST:PORT/mcp, ...")
    p.add_argument(
        "--profile",
        default="normal",
        help=f"built-in ({', '.join(BUILTIN_PROFILES)}) or NAME from --profiles-file: its connections, "
        "method mix and payload; the rate is the search's (default: normal)",
    )
    p.add_argument("--profiles-file", help="TOML or YAML file with [profiles.NAME] tables")
    p.add_argument("--clients", type=int, help="connections the offered rate is spread over")
    p.add_argument("--sla", required=True, metavar="EXPR", help="e.g. 'p99<100ms, error_rate<0.1%%'")
    p.add_argument("--json", metavar="FILE", help="write the JSON report (top-level 'ceiling') here")
    p.add_argument("--html", metavar="FILE", help="write the HTML report with the knee chart here")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="generator processes (cores)")
    p.add_argument("--step-seconds", type=int, default=5, help="measured seconds per step (default 5)")
    p.add_argument(
        "--warmup-seconds", type=int, default=1, help="seconds at the start of each step left out (1)"
    )
    p.add_argument(
        "--start-rate",
        type=float,
        default=DEFAULT_START_RPS,
        help=f"first rate (default {DEFAULT_START_RPS:g})",
    )
    p.add_argument("--factor", type=float, default=2.0, help="step-up multiplier (default 2)")
    p.add_argument("--precision", type=float, default=0.05, help="stop bisecting within this fraction (0.05)")
    p.add_argument("--max-rate", type=float, help="never offer more than this (req/s)")
    p.add_argument("--max-steps", type=int, default=16, help="at most this many steps (default 16)")
    p.add_argument(
        "--max-error-rate", type=float, default=0.01, help="stop when a step's error rate exceeds this (0.01)"
    )
    p.add_argument(
        "--lag-bound-ms",
        type=float,
        default=GeneratorRule.lag_bound_ms,
        help="schedule-lag p99 above which a step may be generator-bound "
        f"(default {GeneratorRule.lag_bound_ms:g})",
    )
    p.add_argument(
        "--timeout", type=float, help="request timeout (default: 3x the SLA's latency limit, >= 2 s)"
    )
    p.set_defaults(func=run)


def _fmt(value: float | None, unit: str = "") -> str:
    return "—" if value is None else f"{value:,.1f}{unit}"


def step_line(step: StepResult) -> str:
    mark = "PASS" if step.passed else "FAIL"
    gen = " [generator-bound: " + "; ".join(step.generator_reasons) + "]" if step.generator_bound else ""
    return (
        f"{step.phase:8} offered {step.offered_rps:9,.0f}  answered {step.achieved_rps:9,.0f}  "
        f"p50 {_fmt(step.p50_ms, ' ms'):>11}  p99 {_fmt(step.p99_ms, ' ms'):>11}  "
        f"errors {step.error_rate:.2%}  {mark}{gen}"
    )


def steps_table(steps: list[StepResult]) -> Table:
    table = Table(title="ceiling search steps (steady state)")
    for col in ("phase", "offered", "answered", "p50 ms", "p99 ms", "errors", "lag p99 ms", "SLA", "gen"):
        table.add_column(col, justify="right")
    for s in steps:
        table.add_row(
            s.phase,
            f"{s.offered_rps:,.0f}",
            f"{s.achieved_rps:,.0f}",
            _fmt(s.p50_ms),
            _fmt(s.p99_ms),
            f"{s.error_rate:.2%}",
            _fmt(s.schedule_lag_p99_ms),
            "PASS" if s.passed else "FAIL",
            "bound" if s.generator_bound else "",
        )
    return table


def run(args: argparse.Namespace) -> int:
    for name in ("step_seconds", "max_steps", "workers"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.warmup_seconds < 0:
        raise UsageError(f"--warmup-seconds must be >= 0, got {args.warmup_seconds}")
    if args.json:
        check_writable(args.json)
    user = load_profiles(args.profiles_file) if args.profiles_file else None
    profile = override(get_profile(args.profile, user), clients=args.clients)
    err = Console(stderr=True)

    def on_step(step: StepResult) -> None:
        err.print(step_line(step), highlight=False)

    report = asyncio.run(
        search_ceiling(
            args.target,
            args.sla,
            profile=profile,
            warmup_s=args.warmup_seconds,
            hold_s=args.step_seconds,
            start_rps=args.start_rate,
            factor=args.factor,
            precision=args.precision,
            max_rps=args.max_rate,
            max_steps=args.max_steps,
            max_error_rate=args.max_error_rate,
            rule=GeneratorRule(lag_bound_ms=args.lag_bound_ms),
            workers=args.workers,
            timeout_s=args.timeout,
            on_step=on_step,
        )
    )
    out = Console()
    out.print(steps_table(report.search.steps))
    out.print(report.summary(), highlight=False)
    doc = report.document()
    if args.json:
        out.print(f"JSON report: {write_json(args.json, doc)}")
    if args.html:
        from pytest_mcpswarm.report.html import document_html

        path = Path(args.html)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(document_html(doc, title=f"mcpswarm ceiling: {args.target}"), encoding="utf-8")
        out.print(f"HTML report: {path}")
    if report.ceiling_rps is None:
        print("mcpswarm ceiling: no step met the SLA", file=sys.stderr)
        return 1
    return 0
