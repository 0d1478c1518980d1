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

With a controller's order (``MCPSWARM_RUN_ID``, ``MCPSWARM_RUN_PLAN``...: ``swarm/control.py``)
it runs its share of that plan instead, from the controller's start time, and reports.

Ours on top: ``MCPSWARM_WS_NEWLINE=1`` (erlmcp framing), ``MCPSWARM_PROTOCOL_VERSION``,
``MCPSWARM_PAYLOAD_BYTES``.  Metrics are the load engine's own exporter
(``load/exporter.py``: ``mcp_client_*``), labelled ``client_type`` and ``replica``.  After a
finite run the container keeps serving its metrics until it is stopped, so Swarm does not
restart it and Prometheus keeps the totals.
The engine runs in this process (one core), which keeps a container inside 128 MB.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from prometheus_client import generate_latest

from pytest_mcpswarm.errors import MCPSwarmError, UsageError
from pytest_mcpswarm.load.exporter import GeneratorMetrics
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.swarm.control import Order, order_from_env
from pytest_mcpswarm.swarm.replica import metrics_registry, serve_http


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


async def run_load(config: ClientSettings, metrics: GeneratorMetrics, stop: asyncio.Event) -> None:
    """Run the plan once (``DURATION_SECONDS``) or chunk after chunk until ``stop``.

    One ``GeneratorMetrics`` observes every chunk's engine, so its counters keep growing.
    """
    from pytest_mcpswarm.load.engine import Engine

    while not stop.is_set():
        plan: RunPlan = replace(config.plan(), start_at=time.time() + 0.5)
        engine = Engine(plan)
        engine.observer = metrics
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
        if config.duration_s:
            print(f"client {config.replica}: run finished; serving metrics until stopped", flush=True)
            await stop.wait()
            return


async def main_async(config: ClientSettings) -> None:
    metrics = GeneratorMetrics()
    registry = metrics_registry(metrics, {"client_type": config.client_type, "replica": config.replica})
    server = serve_http(lambda: generate_latest(registry), config.metrics_port)
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
        server.server_close()


async def main_order(order: Order, metrics_port: int) -> None:
    """Carry out the controller's order (``swarm/control.py``) instead of the plain load."""
    from pytest_mcpswarm.swarm.replica import run_order

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"client {order.replica}: run {order.run_id}, slot {order.slot}/{order.replicas}", flush=True)
    await run_order(order, metrics_port, stop)


def main() -> int:
    try:
        order = order_from_env(os.environ)
        config = settings_from_env(os.environ)
        import uvloop

        if order is not None:
            order.share()  # validate before serving anything
            uvloop.run(main_order(order, config.metrics_port))
            return 0
        config.plan()  # validate the profile and overrides before serving anything
        uvloop.run(main_async(config))
    except MCPSwarmError as exc:
        print(f"client_entry: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
