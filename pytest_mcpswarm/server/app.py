"""Run one worker: bind the socket, serve every connection on uvloop, stop on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
from collections.abc import Callable

import uvloop

from pytest_mcpswarm.errors import PortInUseError, ServerStartError
from pytest_mcpswarm.server.config import ServerConfig
from pytest_mcpswarm.server.context import ServerContext
from pytest_mcpswarm.server.http_conn import HttpConnection

LISTEN_BACKLOG = 4096


def listen_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def listening_line(host: str, port: int, workers: int) -> str:
    """The one line launchers wait for; keep its shape stable."""
    return f"mcpswarm serve: listening on {listen_url(host, port)} (workers={workers})"


def bind_socket(host: str, port: int, *, reuse_port: bool, listen: bool = True) -> socket.socket:
    """A bound (and listening) TCP socket; a taken port becomes PortInUseError, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(f"port {port} on {host} is already in use") from None
        raise ServerStartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


async def serve_socket(
    config: ServerConfig, sock: socket.socket, worker: int, on_ready: Callable[[int], None]
) -> None:
    """Serve on ``sock`` until SIGTERM/SIGINT; ``on_ready(port)`` runs once connections are accepted."""
    loop = asyncio.get_running_loop()
    ctx = ServerContext(config, worker, loop)
    server = await loop.create_server(lambda: HttpConnection(ctx), sock=sock, backlog=LISTEN_BACKLOG)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sweep_every = max(1.0, min(config.session_ttl_s / 2, 60.0))

    timers: list[asyncio.TimerHandle] = []

    def sweep() -> None:
        ctx.sessions.sweep()
        timers[:] = [loop.call_later(sweep_every, sweep)]

    sweep()
    on_ready(sock.getsockname()[1])
    try:
        await stop.wait()
    finally:
        for timer in timers:
            timer.cancel()
        ctx.gate.close()
        server.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def run_worker(
    config: ServerConfig, sock: socket.socket, worker: int, on_ready: Callable[[int], None]
) -> None:
    """Blocking: one uvloop event loop serving ``sock``."""
    uvloop.run(serve_socket(config, sock, worker, on_ready))
