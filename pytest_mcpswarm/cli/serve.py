"""``mcpswarm serve``: the fast reference MCP server (Streamable HTTP, WebSocket, /metrics) on one port."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.server.config import MIB, ServerConfig, default_replica
from pytest_mcpswarm.server.faults import ACCEPTED_FORMS, parse_faults
from pytest_mcpswarm.server.supervisor import serve

DESCRIPTION = """\
Run the reference MCP server: Streamable HTTP at POST /mcp (DELETE ends a session, GET -> 405),
WebSocket at /mcp/ws (one TEXT frame per JSON-RPC message, or erlmcp newline-framed lines),
Prometheus metrics at /metrics, fault counters at /stats, liveness at /health.
Speaks the handshake revisions 2024-11-05 .. 2025-11-25 and the stateless 2026-07-28 revision.
Tools: echo, add, sleep, payload.  Resources: mcpswarm://static/*.  Prompts: greet, summarize.
Prints `mcpswarm serve: listening on http://HOST:PORT (workers=N)` once it accepts connections.
"""


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="run the reference MCP server", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)")
    p.add_argument(
        "--port", type=int, default=0, help="TCP port; 0 picks a free one and prints it (default: 0)"
    )
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes sharing the port via SO_REUSEPORT (default: 1)")  # fmt: skip
    p.add_argument("--delay-ms", type=float, default=0.0,
                   help="asynchronous service delay per tools/call, in ms (default: 0)")  # fmt: skip
    p.add_argument("--max-concurrency", type=int, default=0, metavar="K",
                   help="at most K tools/call in service at once per worker, the rest queue; "
                        "capacity is K*1000/DELAY_MS req/s (default: 0 = unlimited)")  # fmt: skip
    p.add_argument(
        "--max-message-bytes",
        type=int,
        default=16 * MIB,
        help="largest accepted message: HTTP 413 / WebSocket close 1009 beyond it (default: 16 MiB)",
    )
    p.add_argument(
        "--max-sessions",
        type=int,
        default=10_000,
        help="live Streamable HTTP sessions per worker; initialize beyond it -> HTTP 503 (default: 10000)",
    )
    p.add_argument("--session-ttl", type=float, default=3600.0, metavar="SECONDS",
                   help="idle time after which a session expires (-> 404) (default: 3600)")  # fmt: skip
    p.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="extra allowed Origin (repeatable; '*' allows all); others than loopback get 403",
    )
    p.add_argument("--fault", action="append", default=[], metavar="SPEC",
                   help="inject a fault (repeatable): " + ACCEPTED_FORMS.replace("%", "%%"))  # fmt: skip
    p.add_argument("--seed", type=int, default=None, help="seed the fault decisions for a reproducible run")
    p.add_argument(
        "--replica",
        default=None,
        help="name every tools/call reply carries (default: $MCPSWARM_REPLICA or the hostname)",
    )
    p.set_defaults(func=run)


def _check(ok: bool, option: str, accepted: str) -> None:
    if not ok:
        raise UsageError(f"{option}: {accepted}")


def settings(args: argparse.Namespace) -> ServerConfig:
    """Validate the parsed options into one frozen ServerConfig; bad values raise UsageError."""
    _check(0 <= args.port <= 65535, "--port", "must be 0..65535")
    _check(args.workers >= 1, "--workers", "must be at least 1")
    _check(args.delay_ms >= 0, "--delay-ms", "must be >= 0")
    _check(args.max_concurrency >= 0, "--max-concurrency", "must be >= 0")
    _check(args.max_message_bytes >= 1024, "--max-message-bytes", "must be at least 1024")
    _check(args.max_sessions >= 1, "--max-sessions", "must be at least 1")
    _check(args.session_ttl > 0, "--session-ttl", "must be > 0 seconds")
    return ServerConfig(
        host=args.host, port=args.port, workers=args.workers, delay_ms=args.delay_ms,
        max_concurrency=args.max_concurrency, max_message_bytes=args.max_message_bytes,
        max_sessions=args.max_sessions, session_ttl_s=args.session_ttl,
        allow_origins=tuple(args.allow_origin), faults=parse_faults(args.fault), seed=args.seed,
        replica=args.replica or default_replica(),
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    return serve(settings(args))
