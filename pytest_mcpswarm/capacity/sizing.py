"""How many generator replicas a target rate needs: calibration (I/O) and the arithmetic (pure).

One client replica of the swarm stack runs one load engine in one process,
so it can use at most one core.  Calibration measures what one core of
*this* machine's generator sends and answers per CPU-second for a profile
(``per_core_rps``).  Planning divides the target rate by that figure times a
headroom (0.7 by default: run each core at 70 % so its schedule lag stays
low), rounds up to whole replicas, and spreads the profile's connections over
them.  ``override_document`` turns a plan into a compose override file.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.load.profiles import Profile
from pytest_mcpswarm.report.jsonfile import write_json

CALIBRATION_PATH: Final = Path(".mcpswarm") / "calibration.json"
CALIBRATION_FORMAT: Final = 1
#: A replica's memory: the client container stays inside 128 MB (swarm/client_entry.py).
REPLICA_MEMORY: Final = ("256M", "128M")


@dataclass(frozen=True)
class Calibration:
    """What one generator core did against the reference server."""

    profile: str
    #: Requests answered per CPU-second of the generator process.
    per_core_rps: float
    answered: int
    cpu_s: float
    seconds: float
    offered_rps: float
    #: Share of one core the generator used: near 1.0 means the figure is its saturation rate.
    cpu_fraction: float
    machine: dict[str, Any]
    created: float

    def to_dict(self) -> dict[str, Any]:
        return {"format": CALIBRATION_FORMAT} | asdict(self)

    @classmethod
    def from_dict(cls, data: Any, source: str = "calibration") -> Calibration:
        if not isinstance(data, dict) or data.get("format") != CALIBRATION_FORMAT:
            raise UsageError(
                f"{source}: not a calibration file of format {CALIBRATION_FORMAT}",
                fix="run `mcpswarm plan --calibrate` to write one",
            )
        try:
            cal = cls(**{k: v for k, v in data.items() if k != "format"})
        except TypeError as exc:
            raise UsageError(
                f"{source}: malformed calibration ({exc})", fix="rerun with --calibrate"
            ) from None
        if not (isinstance(cal.per_core_rps, int | float) and cal.per_core_rps > 0):
            raise UsageError(f"{source}: per_core_rps must be > 0, got {cal.per_core_rps!r}")
        return cal

    def save(self, path: str | os.PathLike[str] = CALIBRATION_PATH) -> Path:
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str] = CALIBRATION_PATH) -> Calibration:
        try:
            data = orjson.loads(Path(path).read_bytes())
        except FileNotFoundError:
            raise UsageError(
                f"no calibration at {path}", fix="run `mcpswarm plan --calibrate` or pass --calibration FILE"
            ) from None
        except (OSError, orjson.JSONDecodeError) as exc:
            raise UsageError(f"cannot read calibration {path}: {exc}") from None
        return cls.from_dict(data, str(path))


def calibration_from_run(
    profile: str, *, answered: int, cpu_s: float, seconds: float, offered_rps: float, machine: dict[str, Any]
) -> Calibration:
    """A calibration from one single-worker run's totals."""
    if answered <= 0 or cpu_s <= 0 or seconds <= 0:
        raise UsageError(
            f"calibration run measured nothing (answered {answered}, CPU {cpu_s:.3f} s)",
            fix="check that the calibration server started and answers",
        )
    return Calibration(
        profile=profile,
        per_core_rps=answered / cpu_s,
        answered=answered,
        cpu_s=cpu_s,
        seconds=seconds,
        offered_rps=offered_rps,
        cpu_fraction=cpu_s / seconds,
        machine=machine,
        created=time.time(),
    )


@dataclass(frozen=True)
class SwarmPlan:
    """Replicas, reservations and connections for one profile at one total rate."""

    profile: str
    total_rate: float
    per_core_rps: float
    headroom: float
    replicas: int
    rate_per_replica: float
    #: Expected CPU of one replica, in cores (at most ``headroom``).
    cpu_per_replica: float
    cpu_reservation: float
    cpu_limit: float
    clients_per_replica: int
    rate_per_client: float
    total_cores: float
    nodes: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        out = [
            f"profile {self.profile}: {self.total_rate:,.0f} req/s in total",
            f"generator: {self.per_core_rps:,.0f} req/s per core measured; planned at {self.headroom:.0%} "
            f"-> {self.per_core_rps * self.headroom:,.0f} req/s per replica at most",
            f"client replicas: {self.replicas} x {self.rate_per_replica:,.0f} req/s "
            f"({self.clients_per_replica} connections x {self.rate_per_client:,.1f} msg/s each)",
            f"CPU per replica: expected {self.cpu_per_replica:.2f} core, reserve {self.cpu_reservation:g}, "
            f"limit {self.cpu_limit:g}; {self.total_cores:g} cores reserved for clients in total",
        ]
        if self.nodes is not None:
            out.append(f"client nodes needed: {self.nodes}")
        return out


def _round_up(value: float, step: float) -> float:
    return round(math.ceil(value / step - 1e-9) * step, 4)


def plan_swarm(
    profile: Profile,
    total_rate: float,
    per_core_rps: float,
    *,
    headroom: float = 0.7,
    cores_per_node: float | None = None,
) -> SwarmPlan:
    """The arithmetic of ``mcpswarm plan`` (pure)."""
    for name, value in (("total rate", total_rate), ("per-core rate", per_core_rps)):
        if not (math.isfinite(value) and value > 0):
            raise UsageError(f"{name} must be a positive number, got {value!r}")
    if not 0 < headroom <= 1:
        raise UsageError(f"headroom must be in (0, 1], got {headroom!r}", fix="e.g. --headroom 0.7")
    if cores_per_node is not None and not cores_per_node >= 1:
        raise UsageError(f"cores per node must be >= 1, got {cores_per_node!r}")
    per_replica_max = per_core_rps * headroom
    replicas = max(1, math.ceil(total_rate / per_replica_max - 1e-9))
    rate_per_replica = total_rate / replicas
    cpu = rate_per_replica / per_core_rps
    # Connections: keep the profile's per-connection rate where possible, at least one per replica.
    clients_total = max(1, math.ceil(total_rate / profile.rate - 1e-9))
    clients_per_replica = max(1, math.ceil(clients_total / replicas))
    reservation = min(1.0, _round_up(cpu, 0.05))
    nodes = None
    if cores_per_node is not None:
        per_node = max(1, math.floor(cores_per_node / reservation + 1e-9))
        nodes = math.ceil(replicas / per_node)
    return SwarmPlan(
        profile=profile.name,
        total_rate=total_rate,
        per_core_rps=per_core_rps,
        headroom=headroom,
        replicas=replicas,
        rate_per_replica=rate_per_replica,
        cpu_per_replica=cpu,
        cpu_reservation=reservation,
        cpu_limit=1.0,
        clients_per_replica=clients_per_replica,
        rate_per_client=rate_per_replica / clients_per_replica,
        total_cores=round(replicas * reservation, 4),
        nodes=nodes,
    )


def override_document(plan: SwarmPlan, *, service_exists: bool) -> dict[str, Any]:
    """A compose override setting ``mcp-client-<profile>``'s replicas, resources and load.

    A service the base file lacks (``message-bomber`` is not in the shipped
    stack) gets the image, networks and placement a client needs.
    """
    service: dict[str, Any] = {
        "environment": {
            "CLIENT_TYPE": plan.profile,
            "CLIENT_COUNT": str(plan.clients_per_replica),
            "MESSAGE_RATE": f"{plan.rate_per_client:g}",
        },
        "deploy": {
            "replicas": plan.replicas,
            "resources": {
                "limits": {"cpus": f"{plan.cpu_limit:g}", "memory": REPLICA_MEMORY[0]},
                "reservations": {"cpus": f"{plan.cpu_reservation:g}", "memory": REPLICA_MEMORY[1]},
            },
        },
    }
    if not service_exists:
        service = {
            "image": "${MCPSWARM_CLIENT_IMAGE:-mcpswarm/client:latest}",
            "networks": ["mcp-network", "monitoring"],
            **service,
        }
        service["environment"] |= {
            "TARGET_SERVERS": "${MCPSWARM_CLIENT_TARGET:-ws://traefik:5555/mcp/ws}",
            "DURATION_SECONDS": "0",
            "METRICS_PORT": "8888",
            "MCPSWARM_REPLICA": "{{.Service.Name}}.{{.Task.Slot}}",
        }
        service["deploy"] |= {
            "mode": "replicated",
            "endpoint_mode": "dnsrr",
            "placement": {"constraints": ["node.labels.mcpswarm.clients == true"]},
        }
    return {"version": "3.8", "services": {f"mcp-client-{plan.profile}": service}}
