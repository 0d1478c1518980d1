"""The client container's entrypoint: erlmcp's Go simulator variables, our load engine.

Environment (the old simulator's names, so its deployments migrate unchanged):

==================  =======================================================  ==========
``CLIENT_TYPE``     profile: high-load, normal, low-load, slow-client,        normal
                    message-bomber
``TARGET_SERVERS``  the MCP endpoint (first of a comma-separated list)        ws://traefik:5555/mcp/ws
``CLIENT_COUNT``    connections (overrides the profile)                       profile's
``MESSAGE_RATE``    messages per second per connection                        profile's
``DURATION_SECONDS`` seconds of load; 0 = until stopped (in runs of            0
                    ``MCPSWARM_CHUNK_SECONDS``, default 60)
``METRICS_PORT``    ``/metrics`` (Prometheus) and ``/health``                  8888
==================  =======================================================  ==========

Ours on top: ``MCPSWARM_WS_NEWLINE=1`` (erlmcp framing), ``MCPSWARM_PROTOCOL_VERSION``,
``MCPSWARM_PAYLOAD_BYTES``.  After a finite run the container keeps serving its metrics
until it is stopped, so Swarm does not restart it and Prometheus keeps the totals.
The engine runs in this process (one core), which keeps a container inside 128 MB.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pytest_mcpswarm.errors import MCPSwarmError, UsageError
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.swarm.client_metrics import ClientMetrics, registry_for, render


@dataclass(frozen=True)
class ClientSettings:
    client_type: str = "normal"
    target: str = "ws://traefik:5555/mcp/ws"
    clients: int | None = None
    rate: float | None = None
    duration_s: float = 0.0
    metrics_port: int = 8888
    chunk_s: float = 60.0
    ws_newline: bool | None = None
    protocol_version: str | None = None
    payload_bytes: int | None = None
    replica: str = ""

    def plan(self) -> RunPlan:
        """The plan of one run: ``duration_s``, or one chunk when running until stopped."""
        from pytest_mcpswarm.load.plan import plan_from_profile
        from pytest_mcpswarm.load.profiles import get_profile, override

        profile = override(
            get_profile(self.client_type),
            clients=self.clients,
            rate=self.rate,
            duration_s=self.duration_s or self.chunk_s,
            ws_newline=self.ws_newline,
            protocol_version=self.protocol_version,
            payload_bytes=self.payload_bytes,
        )
        return plan_from_profile(profile, target=self.target)


def _number(env: Mapping[str, str], name: str, kind: type[int] | type[float], minimum: float) -> float | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not a {kind.__name__}") from None
    if value < minimum:
        raise UsageError(f"{name}={raw!r} must be at least {minimum}")
    return value


def settings_from_env(env: Mapping[str, str]) -> ClientSettings:
    """Validate the container's environment; a bad value raises UsageError naming the variable."""
    targets = [t.strip() for t in env.get("TARGET_SERVERS", "").split(",") if t.strip()]
    clients = _number(env, "CLIENT_COUNT", int, 1)
    port = _number(env, "METRICS_PORT", int, 1)
    newline = env.get("MCPSWARM_WS_NEWLINE", "").strip().lower()
    payload = _number(env, "MCPSWARM_PAYLOAD_BYTES", int, 0)
    return ClientSettings(
        client_type=env.get("CLIENT_TYPE", "").strip() or "normal",
        target=targets[0] if targets else ClientSettings.target,
        clients=None if clients is None else int(clients),
        rate=_number(env, "MESSAGE_RATE", float, 0.001),
        duration_s=_number(env, "DURATION_SECONDS", float, 0) or 0.0,
        metrics_port=8888 if port is None else int(port),
        chunk_s=_number(env, "MCPSWARM_CHUNK_SECONDS", float, 1) or 60.0,
        ws_newline=True if newline in ("1", "true", "yes") else None,
        protocol_version=env.get("MCPSWARM_PROTOCOL_VERSION") or None,
        payload_bytes=None if payload is None else int(payload),
        replica=env.get("MCPSWARM_REPLICA", ""),
    )


def serve_metrics(metrics: ClientMetrics, port: int) -> ThreadingHTTPServer:
    """``/metrics`` and ``/health`` on ``port`` in a daemon thread."""
    registry = registry_for(metrics)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == "/metrics":
                body, ctype = render(registry), "text/plain; version=0.0.4; charset=utf-8"
            elif self.path == "/health":
                body, ctype = b"ok\n", "text/plain"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


class _Feed:
    """Turns the engine's per-second callbacks into metric updates."""

    def __init__(self, metrics: ClientMetrics) -> None:
        self.metrics = metrics
        self.next_index = 0
        self.errors_seen: dict[str, int] = {}

    def new_errors(self, engine: object) -> dict[str, int]:
        current = dict(engine.snapshot.outcomes.errors_by_type)  # type: ignore[attr-defined]
        fresh = {
            k: n - self.errors_seen.get(k, 0) for k, n in current.items() if n > self.errors_seen.get(k, 0)
        }
        self.errors_seen = current
        return fresh

    def tick(self, engine: object, now_s: float) -> None:
        self.upto(engine, int(now_s))

    def upto(self, engine: object, end_index: int) -> None:
        """Account every window before ``end_index`` not accounted yet."""
        series = engine.snapshot.series  # type: ignore[attr-defined]
        active = int(engine.active)  # type: ignore[attr-defined]
        fresh = self.new_errors(engine)
        while self.next_index < end_index:
            window = series.windows.get(self.next_index)
            if window is not None:
                self.metrics.add_window(window, fresh, active)
                fresh = {}
            self.next_index += 1
        for key, n in fresh.items():  # errors in windows already accounted (late answers)
            self.metrics.errors[key] = self.metrics.errors.get(key, 0) + n
        self.metrics.set_active(active)


async def run_load(config: ClientSettings, metrics: ClientMetrics, stop: asyncio.Event) -> None:
    """Run the plan once (``DURATION_SECONDS``) or chunk after chunk until ``stop``."""
    from pytest_mcpswarm.load.engine import Engine

    while not stop.is_set():
        plan: RunPlan = replace(config.plan(), start_at=time.time() + 0.5)
        feed = _Feed(metrics)
        engine = Engine(plan, on_second=feed.tick)
        task = asyncio.ensure_future(engine.run())
        waiter = asyncio.ensure_future(stop.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return
        waiter.cancel()
        task.result()
        feed.upto(engine, len(engine.snapshot.series.windows) + 10**6)
        metrics.set_active(0)
        if config.duration_s:
            print(f"client {config.replica}: run finished; serving metrics until stopped", flush=True)
            await stop.wait()
            return


async def main_async(config: ClientSettings) -> None:
    metrics = ClientMetrics({"client_type": config.client_type})
    server = serve_metrics(metrics, config.metrics_port)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"client {config.replica or '-'}: {config.client_type} -> {config.target}, "
        f"metrics on :{config.metrics_port}",
        flush=True,
    )
    try:
        await run_load(config, metrics, stop)
    finally:
        server.shutdown()


def main() -> int:
    try:
        config = settings_from_env(os.environ)
        config.plan()  # validate the profile and overrides before serving anything
        import uvloop

        uvloop.run(main_async(config))
    except MCPSwarmError as exc:
        print(f"client_entry: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
