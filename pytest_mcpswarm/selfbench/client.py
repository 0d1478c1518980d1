"""``mcpswarm selfbench client``: the load generator's own speed, against pinned peers, in one run.

Every case runs as its own child process pinned to the client core, against
one reference server (``mcpswarm serve --workers 1``) pinned to the server
core.  A case reports answered requests and the CPU seconds its process spent
over the same steady-state window, so every figure is "per client core" and
every ratio compares two cases measured minutes apart on the same machine.
The rounds alternate the order of each pair, and the report gives the median
and the spread (min..max) over the rounds.  Configurations are pinned below:
only durations, the number of rounds and which goals to measure are options.

Goals (issue 3, section 11):

- (a) WebSocket ``tools/call`` through the engine costs <= 1.25x the client CPU
  per request of the raw picows loop (same connections, rate, tick, writes),
  and the engine reaches >= 100K req/s per client core;
- (b) 20 connections x 10K ``ping``/s from one process: 200K msg/s with
  ``not_sent == 0`` and exact accounting;
- (c) Streamable HTTP: >= 2x Locust FastHttpUser's req/s per core (10
  connections vs 10 users, one request in flight each);
- (d) 2 workers cost <= 1.05x the CPU per request of 1 worker.

The ``split-raw-*`` pair is not a goal; it tells what (d) can be.  It runs
the minimal raw loop at the ``workers-*`` load in one process and in two:
the same split without our engine, controller or merge.  Processes are only
compared side by side: on a VM, what one costs depends on what else its core
runs, so a "floor" measured alone says nothing about a pair.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from pytest_mcpswarm.errors import DriverError, UsageError
from pytest_mcpswarm.load import connection
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.load.requests import MethodSpec
from pytest_mcpswarm.load.shapes import Stage
from pytest_mcpswarm.selfbench import client_locust, cpu, peers
from pytest_mcpswarm.selfbench.driver import run_driver
from pytest_mcpswarm.selfbench.request import ECHO_TEXT

GOAL_WS_OVERHEAD: Final = 1.25
GOAL_WS_PER_CORE: Final = 100_000.0
GOAL_BOMB_RATE: Final = 200_000.0
GOAL_HTTP_VS_LOCUST: Final = 2.0
GOAL_WORKERS: Final = 1.05

ECHO: Final = MethodSpec("tools/call", {"name": "echo", "arguments": {"text": ECHO_TEXT}}, 1.0)
PING: Final = MethodSpec("ping", None, 1.0)


@dataclass(frozen=True, slots=True)
class Case:
    """One pinned configuration: the driver module and what it is given."""

    key: str
    label: str
    module: str
    args: dict[str, Any]


def _plan(url: str, method: MethodSpec, conns: int, rate: float, seconds: float, **kw: Any) -> dict[str, Any]:
    plan = RunPlan(
        target=url,
        methods=(method,),
        stages=(Stage(seconds, conns, rate),),
        start_connections=conns,
        timeout_s=5.0,
        **kw,
    )
    return plan.to_dict()


def cases(port: int, warmup: float, duration: float) -> dict[str, Case]:
    """Every configuration, pinned; the labels say what each one is."""
    ws, http = f"ws://{peers.HOST}:{port}/mcp/ws", f"http://{peers.HOST}:{port}/mcp"
    total = warmup + duration
    stateless = {"protocol_version": "2026-07-28"}
    raw = {"warmup": warmup, "duration": duration, "tick": 0.001}
    return {
        c.key: c
        for c in (
            Case(
                "ws-engine",
                "engine, WS tools/call, 10 conns x 8K/s",
                "pytest_mcpswarm.selfbench.client_engine",
                {"plan": _plan(ws, ECHO, 10, 8000, total, **stateless), "warmup": int(warmup)},
            ),
            Case(
                "ws-raw",
                "raw picows loop, same",
                "pytest_mcpswarm.selfbench.client_raw",
                {"url": ws, "method": "tools/call", "connections": 10, "rate": 8000, **raw},
            ),
            Case(
                "bomb-engine",
                "engine, WS ping 128 B, 20 conns x 10K/s",
                "pytest_mcpswarm.selfbench.client_engine",
                {"plan": _plan(ws, PING, 20, 10_000, total, payload_bytes=128), "warmup": int(warmup)},
            ),
            Case(
                "bomb-raw",
                "raw picows loop, same",
                "pytest_mcpswarm.selfbench.client_raw",
                {"url": ws, "method": "ping", "payload_bytes": 128, "connections": 20, "rate": 10_000, **raw},
            ),
            Case(
                "http-engine",
                "engine, HTTP tools/call, closed, 10 conns",
                "pytest_mcpswarm.selfbench.client_engine",
                {
                    "plan": _plan(http, ECHO, 10, 0.0, total, executor="closed", **stateless),
                    "warmup": int(warmup),
                },
            ),
            Case(
                "http-locust",
                f"Locust FastHttpUser, 1 process, {client_locust.USERS} users, constant(0)",
                "pytest_mcpswarm.selfbench.client_locust",
                {"url": http, "warmup": warmup, "duration": duration},
            ),
            Case(
                "workers-1",
                "mcpswarm run path, 1 worker, WS ping 8 conns x 10K/s",
                "pytest_mcpswarm.selfbench.client_engine",
                {"plan": _plan(ws, PING, 8, 10_000, total), "workers": 1, "warmup": int(warmup)},
            ),
            Case(
                "workers-2",
                "same, 2 workers (both on the client core)",
                "pytest_mcpswarm.selfbench.client_engine",
                {"plan": _plan(ws, PING, 8, 10_000, total), "workers": 2, "warmup": int(warmup)},
            ),
            # (d)'s reference: the minimal loop split over processes the same way, same core.
            Case(
                "split-raw-1",
                "raw picows loop, WS ping 8 conns x 10K/s, 1 process",
                "pytest_mcpswarm.selfbench.client_raw",
                {"url": ws, "method": "ping", "connections": 8, "rate": 10_000, "processes": 1, **raw},
            ),
            Case(
                "split-raw-2",
                "same, 2 processes x 4 conns (both on the client core)",
                "pytest_mcpswarm.selfbench.client_raw",
                {"url": ws, "method": "ping", "connections": 8, "rate": 10_000, "processes": 2, **raw},
            ),
        )
    }


#: Cases measured back to back, by the goal they serve; odd rounds run each group in reverse order.
GROUPS: Final = {
    "a": (("ws-engine", "ws-raw"),),
    "b": (("bomb-engine", "bomb-raw"),),
    "c": (("http-engine", "http-locust"),),
    "d": (("workers-1", "workers-2"), ("split-raw-1", "split-raw-2")),
}


@dataclass(frozen=True, slots=True)
class Settings:
    warmup: float = 2.0
    duration: float = 5.0
    rounds: int = 3
    port: int = 0
    #: The goals to measure (keys of ``GROUPS``); all of them by default.
    only: tuple[str, ...] = tuple(GROUPS)

    def __post_init__(self) -> None:
        if not (self.warmup >= 1 and self.warmup == int(self.warmup)):
            raise UsageError("--warmup must be a whole number of seconds >= 1")
        if not self.duration >= 2:
            raise UsageError("--duration must be at least 2 seconds")
        if not 1 <= self.rounds <= 20:
            raise UsageError("--rounds must be between 1 and 20")
        unknown = sorted(set(self.only) - set(GROUPS))
        if unknown or not self.only:
            got = f"got {', '.join(unknown)}" if unknown else "got none"
            raise UsageError(f"--only takes goals from {', '.join(GROUPS)}, comma-separated ({got})")


@dataclass
class Run:
    """One case measured once."""

    case: str
    requests: int
    seconds: float
    cpu_s: float
    extra: dict[str, Any]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def per_core(self) -> float:
        return self.requests / self.cpu_s if self.cpu_s > 0 else 0.0

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / self.requests * 1e6 if self.requests else float("inf")


@dataclass
class Outcome:
    runs: dict[str, list[Run]] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    machine: dict[str, object] = field(default_factory=dict)
    failures: int = 0

    def ratios(self, a: str, b: str, fn: Callable[[Run, Run], float]) -> list[float]:
        return [fn(x, y) for x, y in zip(self.runs.get(a, []), self.runs.get(b, []), strict=False)]


def spread(values: list[float]) -> tuple[float, float, float] | None:
    """(median, min, max), None without values."""
    return (statistics.median(values), min(values), max(values)) if values else None


def run(settings: Settings, progress: Callable[[str], None]) -> Outcome:
    out = Outcome()
    placement, out.machine = cpu.prepare(out.notes)
    # The engine's children import the same build with the same environment, so they take this path.
    out.machine["engine_reply_path"] = "C" if connection.SuccessPath is not None else "Python"
    skip: set[str] = set()
    if not client_locust.available():
        out.notes.append(client_locust.NOT_INSTALLED)
        skip.add("http-locust")
    port = settings.port or peers.free_port()
    progress(f"starting the reference server on port {port}")
    server = peers.start(peers.OURS, port, placement.server_prefix())
    try:
        table = cases(port, settings.warmup, settings.duration)
        budget = settings.warmup + settings.duration + 90
        for round_no in range(settings.rounds):
            for group in (g for goal in settings.only for g in GROUPS[goal]):
                for key in group if round_no % 2 == 0 else reversed(group):
                    if key in skip:
                        continue
                    case = table[key]
                    progress(f"round {round_no + 1}/{settings.rounds}: {case.label}")
                    try:
                        got, shown = run_driver(
                            case.module,
                            [orjson.dumps(case.args).decode()],
                            placement.client_prefix(),
                            budget=budget,
                        )
                    except DriverError as exc:
                        # One broken case must not cost the figures of the others: say so and go on.
                        out.notes.append(f"round {round_no + 1}, {key} failed: {exc}")
                        out.failures += 1
                        continue
                    out.commands[key] = shown
                    extra = {k: v for k, v in got.items() if k not in ("requests", "seconds", "cpu_s")}
                    out.runs.setdefault(key, []).append(
                        Run(key, int(got["requests"]), float(got["seconds"]), float(got["cpu_s"]), extra)
                    )
    finally:
        server.stop()
    return out
