"""The local backend: N reference servers (``mcpswarm serve``) on loopback, one process each.

Each server binds 127.0.0.1 on a free port.  ``start`` stops whatever it
already started when a later server fails to come up, and an ``atexit``
hook stops anything still running if the session dies without tearing down
(the plugin also turns SIGTERM into an interrupt so teardown runs).
"""

from __future__ import annotations

import atexit
from collections.abc import Sequence
from typing import Any

from pytest_mcpswarm import __version__
from pytest_mcpswarm.server.launch import ServerProcess


class LocalBackend:
    name = "local"

    def __init__(self, replicas: int = 1, transport: str = "ws", server_args: Sequence[str] = ()) -> None:
        self.replicas = replicas
        self.transport = transport
        self.server_args = list(server_args)
        self.servers: list[ServerProcess] = []

    def start(self) -> None:
        atexit.register(self.stop)
        try:
            for index in range(self.replicas):
                server = ServerProcess([*self.server_args, "--replica", f"local-{index}"])
                self.servers.append(server)
                server.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        servers, self.servers = self.servers, []
        for server in servers:
            server.stop()
        atexit.unregister(self.stop)

    def detach(self) -> None:
        """Forget the servers: they keep running after the session (their PIDs are in ``pids``)."""
        atexit.unregister(self.stop)

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(s.ws_url if self.transport == "ws" else s.url for s in self.servers)

    @property
    def metrics_endpoints(self) -> tuple[str, ...]:
        return tuple(f"{s.base}/metrics" for s in self.servers)

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(s.proc.pid for s in self.servers if s.proc is not None)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "targets": list(self.targets),
            "metrics": list(self.metrics_endpoints),
            "server": f"mcpswarm serve {__version__} (reference server)",
            "replicas": self.replicas,
            "managed": True,
        }
