"""``mcpswarm selfbench server`` (ours vs the SDK) and ``client`` (our generator vs raw loops, Locust)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from pytest_mcpswarm.errors import UsageError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "selfbench",
        help="measure our reference server (vs the MCP SDK) or our load generator (vs raw loops, Locust)",
        description="Measure our reference server against the official MCP SDK server (server), or our "
        "load generator against a raw loop and Locust (client), on this machine.",
    )
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    server = targets.add_parser(
        "server",
        help="HTTP req/s of ours vs the SDK (wrk, one core each) and our WebSocket tools/call/s",
        description=(
            "Start our server and the official mcp SDK server (MCPServer, stateless, JSON replies, "
            "uvicorn+uvloop+httptools, 1 worker), each pinned to one core; check one echo tools/call "
            "reply from each; then drive both with the same wrk command from another core."
        ),
    )
    server.add_argument(
        "--duration", type=float, default=10.0, help="seconds measured per server (default 10)"
    )
    server.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of warm-up before each (default 2)"
    )
    server.add_argument("--connections", type=int, default=32, help="HTTP connections (default 32)")
    server.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: one client core)")
    server.add_argument(
        "--client",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="HTTP load client: wrk, our Python driver, or auto (wrk if installed)",
    )
    server.add_argument("--ws-connections", type=int, default=4, help="WebSocket connections (default 4)")
    server.add_argument("--ws-inflight", type=int, default=64, help="tools/call in flight per WS connection")
    server.add_argument("--no-ws", dest="ws", action="store_false", help="skip the WebSocket measurement")
    server.add_argument("--ours-port", type=int, default=0, help="port for our server (default: a free one)")
    server.add_argument(
        "--sdk-port", type=int, default=0, help="port for the SDK server (default: a free one)"
    )
    server.add_argument(
        "--json", type=Path, metavar="FILE", help="also write the figures and machine info here"
    )
    server.add_argument("--strict", action="store_true", help="exit 1 when a goal is not met")
    server.set_defaults(func=run)
    client = targets.add_parser(
        "client",
        help="our load generator's CPU per request vs a raw picows loop, Locust, and itself with 2 workers",
        description=(
            "Measure the load engine against pinned peers, every case a child process on the client core "
            "and one reference server on the server core: (a) WS tools/call vs a raw picows loop, "
            "(b) 20 x 10K ping/s from one process, (c) HTTP vs Locust FastHttpUser (10 users, constant(0)), "
            "(d) 1 vs 2 workers.  Prints each figure as median (min..max) over the rounds."
        ),
    )
    client.add_argument(
        "--warmup", type=float, default=2.0, help="whole seconds of warm-up per case (default 2)"
    )
    client.add_argument("--duration", type=float, default=5.0, help="seconds measured per case (default 5)")
    client.add_argument("--rounds", type=int, default=3, help="repeat every pair this often (default 3)")
    client.add_argument(
        "--only",
        default="a,b,c,d",
        metavar="GOALS",
        help="measure only these goals' cases, comma-separated from a,b,c,d (default all); "
        "for example --only a --rounds 8 for a steadier (a)",
    )
    client.add_argument(
        "--port", type=int, default=0, help="port for the reference server (default: a free one)"
    )
    client.add_argument("--json", type=Path, metavar="FILE", help="also write every run and the goals here")
    client.add_argument("--strict", action="store_true", help="exit 1 when a goal is not met")
    client.set_defaults(func=run_client)


def run_client(args: argparse.Namespace) -> int:
    from pytest_mcpswarm.selfbench import client, client_report

    if not 0 <= args.port <= 65535:
        raise UsageError("--port must be a TCP port (0-65535)")
    only = tuple(dict.fromkeys(part.strip() for part in args.only.split(",") if part.strip()))
    settings = client.Settings(
        warmup=args.warmup, duration=args.duration, rounds=args.rounds, port=args.port, only=only
    )
    return _bench(client, client_report, settings, args)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top, so `mcpswarm --help` does not pay for rich, orjson and picows.
    from pytest_mcpswarm.selfbench import report, runner

    for option in ("ours_port", "sdk_port"):
        if not 0 <= getattr(args, option) <= 65535:
            raise UsageError(f"--{option.replace('_', '-')} must be a TCP port (0-65535)")
    settings = runner.Settings(
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        threads=args.threads,
        ws=args.ws,
        ws_connections=args.ws_connections,
        ws_inflight=args.ws_inflight,
        client=args.client,
        ours_port=args.ours_port,
        sdk_port=args.sdk_port,
    )
    return _bench(runner, report, settings, args)


def _bench(runner: ModuleType, report: ModuleType, settings: object, args: argparse.Namespace) -> int:
    """Run a self-benchmark (``runner.run``) and show it (``report.render/write_json/goals_met``)."""
    from rich.console import Console

    from pytest_mcpswarm.report.jsonfile import check_writable

    if args.json is not None:
        check_writable(args.json)  # before minutes of benchmarking, not after
    console = Console(soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    outcome = runner.run(
        settings, lambda line: err.print(f"selfbench: {line}", highlight=False, markup=False, style="dim")
    )
    report.render(outcome, settings, console)
    if args.json is not None:
        report.write_json(outcome, settings, args.json)
        console.print(f"wrote {args.json}", highlight=False, markup=False)
    sys.stdout.flush()
    return 1 if args.strict and not report.goals_met(outcome) else 0
