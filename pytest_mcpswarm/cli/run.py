"""``mcpswarm run``: one load profile against one MCP server, with a live view and a summary."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.load.controller import run_workers
from pytest_mcpswarm.load.plan import plan_from_profile
from pytest_mcpswarm.load.preflight import preflight
from pytest_mcpswarm.load.profiles import BUILTIN_PROFILES, get_profile, load_profiles, override
from pytest_mcpswarm.report import document
from pytest_mcpswarm.report.jsonfile import check_writable, write_json
from pytest_mcpswarm.sla import SlaOutcome, evaluate, parse_sla
from pytest_mcpswarm.stats.window import Window


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "run",
        help="run a load profile against an MCP server",
        description="Run a load profile (open model: requests leave at their scheduled times) against "
        "an MCP server and report latency from the scheduled send time, throughput and every outcome.",
    )
    p.add_argument(
        "--target", required=True, help="ws://HOST:PORT/mcp/ws, http://HOST:PORT/mcp, tcp://, stdio:CMD"
    )
    p.add_argument(
        "--profile",
        default="normal",
        help=f"built-in ({', '.join(BUILTIN_PROFILES)}) or NAME from --profiles-file (default: normal)",
    )
    p.add_argument("--profiles-file", help="TOML or YAML file with [profiles.NAME] tables")
    p.add_argument("--clients", type=int, help="connections (overrides the profile)")
    p.add_argument("--rate", type=float, help="messages per second per client (overrides the profile)")
    p.add_argument("--payload-bytes", type=int, help="serialized request size in bytes")
    p.add_argument("--duration", type=float, help="seconds (overrides the profile)")
    p.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="generator processes (default: cores)"
    )
    p.add_argument("--timeout", type=float, default=30.0, help="request timeout in seconds (default 30)")
    p.add_argument("--protocol-version", help="MCP revision, e.g. 2025-11-25 or 2026-07-28")
    p.add_argument(
        "--ws-newline", action="store_true", default=None, help="erlmcp framing: end every frame in \\n"
    )
    p.add_argument(
        "--executor",
        choices=("open", "closed", "churn"),
        help="open: send at scheduled times (default); closed: one request in flight per connection; "
        "churn: closed, and reconnect every --churn-calls calls",
    )
    p.add_argument("--churn-calls", type=int, help="churn: calls per connection before it is reopened (100)")
    p.add_argument(
        "--think-time", type=float, help="closed/churn: seconds between an answer and the next call"
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        help="serve the generator's Prometheus metrics: worker i on PORT+i (/metrics)",
    )
    p.add_argument(
        "--metrics-host", default="127.0.0.1", help="address for --metrics-port (default 127.0.0.1)"
    )
    p.add_argument("--json", metavar="FILE", help="write the JSON report here")
    p.add_argument("--sla", metavar="EXPR", help="e.g. 'p99<50ms, error_rate<0.1%%, rps>=2400'")
    p.set_defaults(func=run)


def _live_table(elapsed: float, duration: float, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"mcpswarm run — {elapsed:5.1f}/{duration:.0f} s", expand=False)
    for col in ("t", "rps", "p99 ms", "errors", "timeouts", "not sent", "conns"):
        table.add_column(col, justify="right")
    for row in rows[-10:]:
        table.add_row(*row["cells"])
    return table


def summary_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"{report['name']}: {report['target']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    req = report["requests"]
    for key in ("scheduled", "sent", "ok", "errors", "timeouts", "not_sent"):
        table.add_row(key, str(req[key]))
    table.add_row("throughput", f"{report['throughput_rps']:.1f} req/s")
    for key, value in report["latency_ms"].items():
        table.add_row(f"latency {key}", "—" if value is None else f"{value:.3f} ms")
    for key, value in sorted(report["errors_by_type"].items()):
        table.add_row(f"error {key}", str(value))
    for key, value in sorted(report["not_sent_by_reason"].items()):
        table.add_row(f"not sent: {key}", str(value))
    conns = report["connections"]
    table.add_row("connections", f"opened {conns['opened']}, failed {conns['failed']}, peak {conns['peak']}")
    return table


def run(args: argparse.Namespace) -> int:
    sla = parse_sla(args.sla) if args.sla else None
    if args.json:
        check_writable(args.json)
    if args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    if args.metrics_port is not None and not 0 < args.metrics_port < 65536:
        raise UsageError(f"--metrics-port must be a TCP port (1-65535), got {args.metrics_port}")
    churn_calls = args.churn_calls
    if args.executor == "churn" and churn_calls is None:
        churn_calls = 100
    elif args.executor in ("open", "closed"):
        churn_calls = 0
    user = load_profiles(args.profiles_file) if args.profiles_file else None
    profile = override(
        get_profile(args.profile, user),
        clients=args.clients,
        rate=args.rate,
        payload_bytes=args.payload_bytes,
        duration_s=args.duration,
        ws_newline=args.ws_newline,
        protocol_version=args.protocol_version,
        executor=None if args.executor in (None, "churn") else args.executor,
        churn_calls=churn_calls,
        think_time_s=args.think_time,
    )
    plan = plan_from_profile(
        profile,
        target=args.target,
        timeout_s=args.timeout,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
    )
    asyncio.run(preflight(plan))
    console = Console(stderr=True)
    rows: list[dict[str, Any]] = []
    started = time.monotonic()

    with Live(
        _live_table(0, plan.duration_s, rows), console=console, refresh_per_second=4, transient=False
    ) as live:

        def on_second(t: int, window: Window, active: int) -> None:
            p99 = window.latency.percentile(99) / 1000 if window.latency.total_count else None
            cells = [
                str(t),
                f"{window.ok + window.errors}",
                "—" if p99 is None else f"{p99:.2f}",
                str(window.errors),
                str(window.timeouts),
                str(window.not_sent),
                str(active),
            ]
            rows.append({"cells": cells})
            live.update(_live_table(time.monotonic() - started, plan.duration_s, rows))

        result = asyncio.run(
            run_workers(plan, min(args.workers, plan.ramp.max_connections), on_second=on_second)
        )

    outcome: SlaOutcome | None = evaluate(sla, result.snapshot) if sla else None
    report = document.scenario("run", result, profile=profile.name, backend="external", sla=outcome)
    out = Console()
    out.print(summary_table(report))
    if args.json:
        path = write_json(args.json, document.document([report]))
        out.print(f"JSON report: {path}")
    if report["generator_bound"]:
        reasons = "; ".join(report["generator"]["reasons"])
        out.print(f"[bold red]GENERATOR-BOUND[/]: the load generator was the bottleneck ({reasons})")
    if outcome is not None:
        out.print(outcome.message)
        if not outcome.passed:
            bound = " (on a generator-bound run: see above)" if report["generator_bound"] else ""
            print(f"mcpswarm run: SLA failed{bound}", file=sys.stderr)
            return 1
    return 0
