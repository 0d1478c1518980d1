"""Per-process state every connection of one worker shares."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from pytest_mcpswarm.server.config import ServerConfig
from pytest_mcpswarm.server.dispatch import Dispatcher
from pytest_mcpswarm.server.faults import FaultInjector
from pytest_mcpswarm.server.metrics import MetricsExporter, ServerStats
from pytest_mcpswarm.server.service import WriteGate
from pytest_mcpswarm.server.sessions import SessionTable

_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class ServerContext:
    def __init__(self, config: ServerConfig, worker: int, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.worker = worker
        self.loop = loop
        # Each worker draws from its own stream so --seed stays reproducible per worker.
        seed = None if config.seed is None else config.seed + worker
        self.injector = FaultInjector(config.faults, seed)
        self.stats = ServerStats(
            config.replica, worker, self.injector.counts, self.injector.seconds, self.injector.epoch_unix
        )
        self.sessions = SessionTable(config.max_sessions, config.session_ttl_s)
        self.stats.sessions = self.sessions.__len__
        self.dispatcher = Dispatcher(config, worker, loop, self.injector, self.stats)
        self.gate = WriteGate(loop, config.faults.stall, self.injector)
        self.exporter = MetricsExporter(self.stats)
        self._origins: dict[str, bool] = {}

    def origin_allowed(self, origin: str) -> bool:
        """DNS-rebinding guard: loopback origins and --allow-origin values only (cached per value)."""
        ok = self._origins.get(origin)
        if ok is None:
            if origin in self.config.allow_origins or "*" in self.config.allow_origins:
                ok = True
            else:
                try:
                    ok = urlsplit(origin).hostname in _LOOPBACK_HOSTS
                except ValueError:
                    ok = False
            if len(self._origins) < 1024:  # a hostile client must not grow the cache without bound
                self._origins[origin] = ok
        return ok
