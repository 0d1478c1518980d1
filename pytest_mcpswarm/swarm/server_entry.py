"""The server container's entrypoint: one reference server, three listeners.

The stack (like erlmcp's image) exposes HTTP on 8080, WebSocket on 5555 and metrics on
9100 inside the overlay.  The reference server answers every path on any port, so this
runs ONE worker with one shared state (sessions, counters) accepting on all three ports:
``/metrics`` on 9100 counts the requests served on 8080 and 5555.

Options are ``mcpswarm serve``'s, taken from ``MCPSWARM_SERVER_ARGS`` and the command
line (``--fault drop:1%``...); ports from ``--http-port/--ws-port/--metrics-port`` or
``MCPSWARM_HTTP_PORT/MCPSWARM_WS_PORT/MCPSWARM_METRICS_PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import signal
import sys
from collections.abc import Sequence

from pytest_mcpswarm.errors import MCPSwarmError
from pytest_mcpswarm.server.app import LISTEN_BACKLOG, bind_socket, listening_line
from pytest_mcpswarm.server.config import ServerConfig
from pytest_mcpswarm.server.context import ServerContext
from pytest_mcpswarm.server.http_conn import HttpConnection


def parse(argv: Sequence[str]) -> tuple[ServerConfig, list[int]]:
    """``(config, ports)`` from the environment and ``argv``; bad values raise UsageError."""
    from pytest_mcpswarm.cli import serve as serve_cli

    ports = argparse.ArgumentParser(add_help=False)
    for name, default in (("http", 8080), ("ws", 5555), ("metrics", 9100)):
        env = os.environ.get(f"MCPSWARM_{name.upper()}_PORT")
        ports.add_argument(f"--{name}-port", type=int, default=int(env) if env else default)
    known, rest = ports.parse_known_args(list(argv))
    parser = argparse.ArgumentParser(prog="server_entry")
    serve_cli.register(parser.add_subparsers(dest="command"))
    extra = shlex.split(os.environ.get("MCPSWARM_SERVER_ARGS", ""))
    args = parser.parse_args(["serve", "--host", "0.0.0.0", "--allow-origin", "*", *extra, *rest])
    # One listener set per distinct port, in HTTP, WS, metrics order.
    wanted = [known.http_port, known.ws_port, known.metrics_port]
    return serve_cli.settings(args), list(dict.fromkeys(wanted))


async def serve(config: ServerConfig, ports: Sequence[int]) -> None:
    loop = asyncio.get_running_loop()
    ctx = ServerContext(config, 0, loop)
    servers = []
    for port in ports:
        sock = bind_socket(config.host, port, reuse_port=False)
        servers.append(
            await loop.create_server(lambda: HttpConnection(ctx), sock=sock, backlog=LISTEN_BACKLOG)
        )
        print(listening_line(config.host, port, 1), flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def sweep() -> None:
        ctx.sessions.sweep()
        loop.call_later(max(1.0, min(config.session_ttl_s / 2, 60.0)), sweep)

    sweep()
    try:
        await stop.wait()
    finally:
        ctx.gate.close()
        for server in servers:
            server.close()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config, ports = parse(sys.argv[1:] if argv is None else argv)
    except MCPSwarmError as exc:
        print(f"server_entry: error: {exc}", file=sys.stderr)
        return 2
    import uvloop

    try:
        uvloop.run(serve(config, ports))
    except MCPSwarmError as exc:
        print(f"server_entry: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
