"""Show an ``Outcome``: a table for people, a JSON file for machines."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from pytest_mcpswarm.report import jsonfile
from pytest_mcpswarm.selfbench.runner import HTTP_GOAL_RATIO, WS_GOAL_RATE, Outcome, Settings


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def render(outcome: Outcome, settings: Settings, console: Console) -> None:
    for note in outcome.notes:
        console.print(note, highlight=False, markup=False)
    m = outcome.machine
    if m.get("server_core") is not None:
        where = f"server on core {m['server_core']}, client on core {m['client_core']}"
    else:
        where = "unpinned"
    client = outcome.http[0].client if outcome.http else outcome.client
    if outcome.client == "wrk":
        label, threads = "", f"{settings.threads} thread(s), "
    else:
        label, threads = " [fallback: our Python HTTP driver, not wrk]", ""
    console.print(
        f"HTTP stateless tools/call (echo), client {client}{label}: {threads}"
        f"{settings.connections} connections, {settings.duration:g} s after {settings.warmup:g} s warm-up; "
        f"{where}",
        highlight=False,
        markup=False,
    )
    table = Table(box=box.SIMPLE_HEAD)
    for col in ("server", "req/s", "p50", "p99"):
        table.add_column(col, justify="left" if col == "server" else "right")
    for f in outcome.http:
        table.add_row(f.server, f"{f.rps:,.0f}", _ms(f.p50_ms), _ms(f.p99_ms))
    console.print(table)
    for f in outcome.http:
        console.print(f"  {f.server}: {f.command}", highlight=False, markup=False, style="dim")
    ratio = outcome.ratio()
    if ratio is not None:
        verdict = _verdict(ratio >= HTTP_GOAL_RATIO)
        console.print(
            f"ratio ours/SDK: {ratio:.2f}x (goal >= {HTTP_GOAL_RATIO:g}x per core: {verdict})",
            highlight=False,
            markup=False,
        )
    if outcome.ws is not None:
        w = outcome.ws
        console.print(
            f"WebSocket tools/call/s ({w.server}, 1 server core): {w.rate:,.0f} "
            f"(goal >= {WS_GOAL_RATE:,.0f}: {_verdict(w.rate >= WS_GOAL_RATE)}); "
            f"client {w.client}, {w.connections} connections x {w.inflight} in flight",
            highlight=False,
            markup=False,
        )


def goals_met(outcome: Outcome) -> bool:
    ratio = outcome.ratio()
    ws_ok = outcome.ws is None or outcome.ws.rate >= WS_GOAL_RATE
    return ratio is not None and ratio >= HTTP_GOAL_RATIO and ws_ok


def write_json(outcome: Outcome, settings: Settings, path: Path) -> None:
    ratio = outcome.ratio()
    doc = {
        "kind": "mcpswarm.selfbench.server",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "settings": {
            "duration_s": settings.duration,
            "warmup_s": settings.warmup,
            "connections": settings.connections,
            "threads": settings.threads,
            "ws_connections": settings.ws_connections,
            "ws_inflight": settings.ws_inflight,
            "client": outcome.client,
        },
        "machine": outcome.machine,
        "notes": outcome.notes,
        "http": [f.as_dict() for f in outcome.http],
        "ratio_ours_over_sdk": ratio,
        "ratio_goal": HTTP_GOAL_RATIO,
        "websocket": outcome.ws.as_dict() if outcome.ws else None,
        "websocket_goal_per_s": WS_GOAL_RATE,
        "goals_met": goals_met(outcome),
    }
    jsonfile.write_json(path, doc)
