"""Result records shared by the drivers, the runner and the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class HttpFigures:
    """One HTTP measurement of one server by one client."""

    server: str
    client: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    command: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class WsFigures:
    """tools/call throughput over WebSocket with many requests in flight per connection."""

    server: str
    client: str
    connections: int
    inflight: int
    requests: int
    seconds: float
    rate: float
    errors: int
    command: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)
