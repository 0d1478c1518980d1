"""The reference server's settings, settled once into a frozen dataclass."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from pytest_mcpswarm.server.faults import FaultPlan

MIB = 1024 * 1024


def default_replica() -> str:
    """Name replies carry so swarm tests can tell replicas apart: env first, hostname otherwise."""
    return os.environ.get("MCPSWARM_REPLICA") or socket.gethostname()


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 0
    workers: int = 1
    delay_ms: float = 0.0
    max_concurrency: int = 0  # 0 = unlimited
    max_message_bytes: int = 16 * MIB
    max_sessions: int = 10_000
    session_ttl_s: float = 3600.0
    allow_origins: tuple[str, ...] = ()
    faults: FaultPlan = field(default_factory=FaultPlan)
    seed: int | None = None
    replica: str = field(default_factory=default_replica)
