"""The selfbench sequence: start both servers, validate both, warm up, measure each, stop all.

Both servers are started and validated before any measurement, so a broken
peer fails the run in seconds, not after the first benchmark.  Every
process this module starts is stopped in a ``finally``.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field

from pytest_mcpswarm.errors import MCPSwarmError, ProtocolError, TransportError, UsageError
from pytest_mcpswarm.selfbench import cpu, peers, wrk
from pytest_mcpswarm.selfbench.driver import run_driver
from pytest_mcpswarm.selfbench.request import WS_PATH, ToolCall, check_reply
from pytest_mcpswarm.selfbench.results import HttpFigures, WsFigures
from pytest_mcpswarm.selfbench.wsdriver import validate_one

HTTP_GOAL_RATIO = 10.0
WS_GOAL_RATE = 80_000.0
#: Share of all CPUs busy before we start above which the figures are flagged as unreliable.


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of ``selfbench server``, settled once from the command line."""

    duration: float = 10.0
    warmup: float = 2.0
    connections: int = 32
    threads: int = 1
    ws: bool = True
    ws_connections: int = 4
    ws_inflight: int = 64
    client: str = "auto"  # auto | wrk | python
    ours_port: int = 0
    sdk_port: int = 0
    start_timeout: float = 30.0

    def __post_init__(self) -> None:
        checks = {
            "--duration": self.duration >= 1,
            "--warmup": self.warmup >= 0,
            "--connections": self.connections >= 1,
            "--threads": 1 <= self.threads <= self.connections,
            "--ws-connections": self.ws_connections >= 1,
            "--ws-inflight": self.ws_inflight >= 1,
            "--client": self.client in ("auto", "wrk", "python"),
        }
        for option, ok in checks.items():
            if not ok:
                raise UsageError(
                    f"{option} has a value selfbench does not accept: see `mcpswarm selfbench server -h`"
                )


@dataclass
class Outcome:
    """What the run measured, plus the notes the reader must see next to the figures."""

    http: list[HttpFigures] = field(default_factory=list)
    ws: WsFigures | None = None
    notes: list[str] = field(default_factory=list)
    machine: dict[str, object] = field(default_factory=dict)
    client: str = "wrk"

    def ratio(self) -> float | None:
        by = {f.server: f.rps for f in self.http}
        ours, sdk = by.get(peers.OURS.label), by.get(peers.SDK.label)
        return ours / sdk if ours is not None and sdk else None


def _choose_client(settings: Settings, notes: list[str]) -> str:
    if settings.client == "python":
        return "python"
    if wrk.available():
        return "wrk"
    if settings.client == "wrk":
        raise UsageError(wrk.NOT_FOUND, fix="or pass --client python to use our Python HTTP driver")
    notes.append(wrk.NOT_FOUND)
    return "python"


def _check_sdk_installed() -> None:
    for module in ("mcp", "uvicorn", "uvloop", "httptools"):
        if importlib.util.find_spec(module) is None:
            raise MCPSwarmError(
                f"the SDK peer needs the {module!r} package, which is not installed",
                fix="pip install 'pytest-mcpswarm[peers]'",
            )


def _measure_http(
    client: str, peer: peers.RunningPeer, settings: Settings, placement: cpu.Placement, *, warmup: bool
) -> HttpFigures:
    duration = settings.warmup if warmup else settings.duration
    if client == "wrk":
        return wrk.run(
            server=peer.spec.label,
            url=peer.http_url,
            call=ToolCall(),
            prefix=placement.client_prefix(),
            threads=settings.threads,
            connections=settings.connections,
            duration=duration,
        )
    args = ["--port", str(peer.port), "--connections", str(settings.connections)]
    args += ["--warmup", "0", "--duration", str(duration)]
    got, shown = run_driver(
        "pytest_mcpswarm.selfbench.httpdriver", args, placement.client_prefix(), budget=duration + 60
    )
    return HttpFigures(
        peer.spec.label,
        "python (httptools+uvloop)",
        int(got["requests"]),
        float(got["seconds"]),
        float(got["rps"]),
        got["p50_ms"],
        got["p99_ms"],
        int(got["errors"]),
        shown,
    )


def _validate_ws(peer: peers.RunningPeer, url: str) -> None:
    who = f"the {peer.spec.label} server ({url})"
    try:
        reply = validate_one(url)
    except (OSError, TimeoutError) as exc:
        raise TransportError(
            f"{who} did not answer a tools/call over WebSocket: {exc or 'timeout'}"
        ) from None
    except Exception as exc:  # picows handshake failures have their own types
        raise TransportError(f"{who} refused the WebSocket: {type(exc).__name__}: {exc}") from None
    check_reply(ToolCall(), 200, reply, who=who)


def _measure_ws(peer: peers.RunningPeer, settings: Settings, placement: cpu.Placement) -> WsFigures:
    url = f"ws://{peers.HOST}:{peer.port}{WS_PATH}"
    _validate_ws(peer, url)
    args = [
        "--url",
        url,
        "--connections",
        str(settings.ws_connections),
        "--inflight",
        str(settings.ws_inflight),
    ]
    args += ["--warmup", str(settings.warmup), "--duration", str(settings.duration)]
    got, shown = run_driver(
        "pytest_mcpswarm.selfbench.wsdriver",
        args,
        placement.client_prefix(),
        budget=settings.warmup + settings.duration + 60,
    )
    return WsFigures(
        peer.spec.label,
        "picows (masked, batched writes)",
        settings.ws_connections,
        settings.ws_inflight,
        int(got["requests"]),
        float(got["seconds"]),
        float(got["rate"]),
        int(got["errors"]),
        shown,
    )


def run(settings: Settings, progress: Callable[[str], None]) -> Outcome:
    """Run the whole comparison; raises an ``MCPSwarmError`` subclass on any failure."""
    out = Outcome()
    placement, out.machine = cpu.prepare(out.notes)
    out.client = _choose_client(settings, out.notes)
    _check_sdk_installed()
    call = ToolCall()
    ports = {}
    for spec, port, option in (
        (peers.OURS, settings.ours_port, "--ours-port"),
        (peers.SDK, settings.sdk_port, "--sdk-port"),
    ):
        if port:
            peers.ensure_port_free(port, option=option)
        ports[spec.key] = port or peers.free_port()
    with contextlib.ExitStack() as stack:
        running: list[peers.RunningPeer] = []
        for spec in (peers.OURS, peers.SDK):
            progress(f"starting the {spec.label} server on port {ports[spec.key]}")
            peer = peers.start(
                spec, ports[spec.key], placement.server_prefix(), timeout=settings.start_timeout
            )
            stack.callback(peer.stop)
            running.append(peer)
        for peer in running:
            peers.validate(peer, call)
        progress("both servers answered the echo tools/call correctly")
        for peer in running:
            if settings.warmup > 0:
                progress(f"warming up {peer.spec.label} ({settings.warmup:g} s)")
                _measure_http(out.client, peer, settings, placement, warmup=True)
            progress(f"measuring {peer.spec.label} over HTTP ({settings.duration:g} s)")
            figures = _measure_http(out.client, peer, settings, placement, warmup=False)
            # A server that degrades into errors under load must not be credited with their speed.
            peers.validate(peer, call)
            if figures.errors:
                raise ProtocolError(
                    f"the {peer.spec.label} server gave {figures.errors} failed replies during the run "
                    f"out of {figures.requests + figures.errors}"
                )
            out.http.append(figures)
        if settings.ws:
            progress(f"measuring {peers.OURS.label} over WebSocket ({settings.duration:g} s)")
            out.ws = _measure_ws(running[0], settings, placement)
    return out
