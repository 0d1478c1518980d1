"""What a run must do, as plain data a controller hands to its workers.

A ``RunPlan`` is JSON-serializable so it crosses process (and, on the swarm
backend, container) boundaries unchanged; every worker derives its own
schedule from it and the shared start time, so no per-request coordination
is needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.load.profiles import Profile
from pytest_mcpswarm.load.requests import MethodSpec
from pytest_mcpswarm.load.shapes import Ramp, Stage
from pytest_mcpswarm.protocol import versions

Executor = Literal["open", "closed", "churn"]
EXECUTORS: tuple[str, ...] = ("open", "closed", "churn")


@dataclass(frozen=True)
class RunPlan:
    target: str
    methods: tuple[MethodSpec, ...]
    stages: tuple[Stage, ...]
    start_connections: int = 0
    payload_bytes: int = 0
    executor: Executor = "open"
    churn_calls: int = 100
    think_time_s: float = 0.0
    timeout_s: float = 30.0
    #: A send later than this behind its intended time is dropped as ``not_sent: late``.
    max_lateness_s: float = 1.0
    protocol_version: str = versions.LATEST_HANDSHAKE
    ws_newline: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    #: HTTP: the most keep-alive connections one client may grow its pool to.
    http_max_connections: int = 64
    #: Seconds at the start whose windows reports may exclude (warm-up).
    warmup_s: float = 0.0
    #: Connection indices this worker runs; empty means all of them.
    connections: tuple[int, ...] = ()
    #: Unix time at which t=0 of the schedule happens, shared by all workers.
    start_at: float = 0.0
    #: Prometheus endpoint of the generator: worker ``i`` serves ``metrics_port + i`` on ``metrics_host``.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    #: Which worker this plan is for (set by ``split``): picks its metrics port.
    worker_index: int = 0
    #: Open model: while requests are due the scheduler wakes on the grid ``t0 + k * tick_s`` and
    #: writes each connection's due requests at once; 0 wakes it at every send time instead
    #: (no tick lag, one wake-up per request: costly at high rates).
    tick_s: float = 0.001

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise UsageError(
                f"executor {self.executor!r} is unknown", fix=f"use one of {', '.join(EXECUTORS)}"
            )
        for name in ("timeout_s", "max_lateness_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise UsageError(
                    f"{name.removesuffix('_s')} must be a positive number of seconds, got {value!r}"
                )
        if not self.methods:
            raise UsageError("a run needs at least one method in its mix")
        if not (math.isfinite(self.tick_s) and 0 <= self.tick_s <= 0.1):
            raise UsageError(f"tick must be between 0 and 0.1 s, got {self.tick_s!r}")
        if isinstance(self.churn_calls, bool) or not (
            isinstance(self.churn_calls, int) and self.churn_calls >= 1
        ):
            raise UsageError(f"churn calls must be a whole number >= 1, got {self.churn_calls!r}")
        if not (math.isfinite(self.think_time_s) and self.think_time_s >= 0):
            raise UsageError(
                f"think time must be a non-negative number of seconds, got {self.think_time_s!r}"
            )
        if self.metrics_port is not None and not 0 < self.metrics_port < 65536:
            raise UsageError(f"metrics port must be a TCP port (1-65535), got {self.metrics_port!r}")
        if self.protocol_version not in versions.ALL_VERSIONS:
            raise UsageError(
                f"protocol version {self.protocol_version!r} is unknown",
                fix=f"use one of {', '.join(versions.ALL_VERSIONS)}",
            )

    @property
    def ramp(self) -> Ramp:
        return Ramp(self.stages, start_connections=self.start_connections)

    @property
    def duration_s(self) -> float:
        return self.ramp.duration_s

    def my_connections(self) -> list[int]:
        return list(self.connections) if self.connections else list(range(self.ramp.max_connections))

    def split(self, workers: int) -> list[RunPlan]:
        """One plan per worker, connections dealt round-robin so ramps spread evenly."""
        every = self.my_connections()
        parts = [tuple(every[i::workers]) for i in range(workers)]
        parts = [part for part in parts if part]
        return [replace(self, connections=part, worker_index=i) for i, part in enumerate(parts)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunPlan:
        fields = dict(data)
        fields["methods"] = tuple(MethodSpec(**m) for m in data["methods"])
        fields["stages"] = tuple(Stage(**s) for s in data["stages"])
        fields["connections"] = tuple(data.get("connections", ()))
        return cls(**fields)


def method_specs(profile: Profile) -> tuple[MethodSpec, ...]:
    """The profile's weighted mix, one spec per concrete call (each tool, resource, prompt)."""
    specs: list[MethodSpec] = []
    for method, weight in profile.method_mix():
        calls: list[tuple[dict[str, Any] | None, str | None]]
        if method == "tools/call":
            calls = [({"name": n, "arguments": dict(a)}, _pad_arg(a)) for n, a in profile.tools.items()]
        elif method == "resources/read":
            calls = [({"uri": uri}, None) for uri in profile.resources]
        elif method == "prompts/get":
            calls = [({"name": n, "arguments": dict(a)}, None) for n, a in profile.prompts.items()]
        else:
            calls = [(None, None)]
        specs.extend(MethodSpec(method, params, weight / len(calls), pad) for params, pad in calls)
    return tuple(specs)


def _pad_arg(arguments: Mapping[str, Any]) -> str | None:
    """The first string argument absorbs padding (``echo``'s ``text``); else ``_meta`` does."""
    return next((k for k, v in arguments.items() if isinstance(v, str)), None)


def plan_from_profile(profile: Profile, *, target: str | None = None, **overrides: Any) -> RunPlan:
    """A ``RunPlan`` that runs ``profile`` against ``target`` (or the profile's own)."""
    url = target or profile.target
    if not url:
        raise UsageError(
            f"profile {profile.name!r} has no target", fix="pass --target URL or set 'target' in the profile"
        )
    ramp = profile.ramp()
    fields: dict[str, Any] = {
        "target": url,
        "methods": method_specs(profile),
        "stages": ramp.stages,
        "start_connections": ramp.start_connections,
        "payload_bytes": profile.payload_bytes,
        "executor": "churn" if profile.churn_calls else profile.executor,
        "churn_calls": profile.churn_calls or 100,
        "think_time_s": profile.think_time_s,
        "ws_newline": profile.ws_newline,
        "headers": dict(profile.headers),
    }
    if profile.protocol_version:
        fields["protocol_version"] = profile.protocol_version
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return RunPlan(**fields)
