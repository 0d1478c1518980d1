"""Scenarios: a load profile, its phases, warm-up and default SLA, as plain frozen data.

The built-in ``SCENARIOS`` are the original rig's test scripts (baseline,
connection flood, message bombing) plus one scenario per profile.  Phase
lengths and client counts are the full-size ones; ``scaled`` shrinks them
(``--mcpswarm-time-scale``, ``--mcpswarm-load-scale``) and ``with_overrides``
applies ``--mcpswarm-set SCENARIO.FIELD=VALUE``.  FIELD is a profile field
(``clients``, ``rate``, ``payload_bytes``, ``methods``, ``duration_s``, ...), a
scenario field (``warmup_s``, ``timeout_s``, ``rps_floor``) or, for a phased
scenario, ``PHASE.duration_s|clients|rate`` (``message-bombing.bombing.rate``).
Every value goes through the profile validators, so a bad one names the field.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Final

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.load.profiles import BUILTIN_PROFILES, FIELDS, Profile, override
from pytest_mcpswarm.load.shapes import Stage

#: Profile fields a scenario override may set (stages come from phases).
PROFILE_FIELDS: Final = tuple(f for f in FIELDS if f not in ("name", "stages", "description"))
SCENARIO_FIELDS: Final = ("warmup_s", "timeout_s", "rps_floor")
PHASE_FIELDS: Final = ("duration_s", "clients", "rate")


@dataclass(frozen=True)
class Phase:
    """``duration_s`` seconds at ``clients`` connections x ``rate`` msg/s each.

    ``ramp``: move linearly from the previous phase's clients and rate (from 0
    connections for the first phase); otherwise step to them at the start.
    """

    name: str
    duration_s: float
    clients: int
    rate: float
    ramp: bool = False


@dataclass(frozen=True)
class Scenario:
    """One benchmark: what load, for how long, what is excluded and what must hold."""

    name: str
    profile: Profile
    description: str = ""
    #: Empty: the profile's flat clients x rate for its duration_s.
    phases: tuple[Phase, ...] = ()
    #: Seconds at the start excluded from the statistics (and the SLA).
    warmup_s: float = 0.0
    sla: str = ""
    #: Adds ``rps >= rps_floor x offered rate`` (after warm-up) to the default SLA.
    rps_floor: float | None = None
    #: Phase whose 1 s windows give the "peak" figures (connection flood).
    peak_phase: str | None = None
    #: Stress phase and the phase before it: degradation and recovery time (message bombing).
    stress_phase: str | None = None
    reference_phase: str | None = None
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        names = [p.name for p in self.phases]
        for ref in (self.peak_phase, self.stress_phase, self.reference_phase):
            if ref is not None and ref not in names:
                raise UsageError(f"scenario {self.name!r}: no phase {ref!r}; phases: {', '.join(names)}")

    @property
    def duration_s(self) -> float:
        return sum(p.duration_s for p in self.phases) if self.phases else self.profile.duration_s

    def phase_bounds(self) -> list[tuple[str, float, float]]:
        """``(name, start_s, stop_s)`` of every phase, in order."""
        out, t = [], 0.0
        for phase in self.phases:
            out.append((phase.name, t, t + phase.duration_s))
            t += phase.duration_s
        return out

    def run_profile(self) -> Profile:
        """The profile the engine runs: the phases become its stages."""
        if not self.phases:
            return self.profile
        stages: list[Stage] = []
        for phase in self.phases:
            if not phase.ramp:
                stages.append(Stage(0.0, phase.clients, phase.rate))
            stages.append(Stage(phase.duration_s, phase.clients, phase.rate))
        return override(self.profile, stages=tuple(stages))

    def effective_sla(self, offered_rps: float) -> str:
        """The default SLA, with the throughput floor made concrete for this run's offered rate."""
        checks = [self.sla] if self.sla.strip() else []
        if self.rps_floor is not None and offered_rps > 0:
            checks.append(f"rps>={math.floor(self.rps_floor * offered_rps * 100) / 100:g}")
        return ", ".join(checks)

    def params(self) -> dict[str, Any]:
        """What defines this scenario, for the report's ``params``."""
        return {
            "scenario": self.name,
            "profile": self.profile.name,
            "clients": self.profile.clients,
            "rate": self.profile.rate,
            "phases": [dataclasses.asdict(p) for p in self.phases],
            "warmup_s": self.warmup_s,
            "rps_floor": self.rps_floor,
            "default_sla": self.sla,
        }

    # -- scaling and overrides ---------------------------------------------------------

    def scaled(self, time_scale: float = 1.0, load_scale: float = 1.0) -> Scenario:
        """Every duration x ``time_scale``; every client count x ``load_scale`` (ceil, at least 1)."""

        def clients(n: int) -> int:
            return 0 if n == 0 else max(1, math.ceil(n * load_scale - 1e-9))

        profile = replace(
            self.profile,
            clients=clients(self.profile.clients),
            duration_s=self.profile.duration_s * time_scale,
        )
        phases = tuple(
            replace(p, duration_s=p.duration_s * time_scale, clients=clients(p.clients)) for p in self.phases
        )
        return replace(self, profile=profile, phases=phases, warmup_s=self.warmup_s * time_scale)

    def with_overrides(self, fields: Mapping[str, object], *, label: str = "") -> Scenario:
        """This scenario with ``{FIELD: value}`` applied (values may be CLI strings)."""
        out = self
        for key, value in fields.items():
            try:
                out = out._with(key, value)
            except UsageError as exc:
                where = label or f"scenario {self.name!r}"
                raise UsageError(f"{where}: {key}={value!r}: {exc.problem}", fix=exc.fix_text) from None
        return out

    def _with(self, key: str, value: object) -> Scenario:
        if "." in key:
            phase_name, _, field = key.partition(".")
            names = [p.name for p in self.phases]
            if phase_name not in names:
                raise UsageError(
                    f"no phase {phase_name!r}",
                    fix=f"phases of {self.name}: {', '.join(names) or 'none (it is not phased)'}",
                )
            if field not in PHASE_FIELDS:
                raise UsageError(f"unknown phase field {field!r}", fix=f"accepted: {', '.join(PHASE_FIELDS)}")
            probe = _probe(self.name, "clients" if field == "clients" else field, value)
            phases = tuple(replace(p, **{field: probe}) if p.name == phase_name else p for p in self.phases)
            return replace(self, phases=phases)
        if key == "warmup_s":
            return replace(self, warmup_s=_probe(self.name, "think_time_s", value))
        if key == "timeout_s":
            return replace(self, timeout_s=_probe(self.name, "duration_s", value))
        if key == "rps_floor":
            return replace(self, rps_floor=_fraction(value))
        if key not in PROFILE_FIELDS:
            raise UsageError(f"unknown field {key!r}", fix=f"accepted: {', '.join(accepted_fields(self))}")
        if self.phases and key in PHASE_FIELDS:
            raise UsageError(
                f"{self.name} is phased, so {key} is set per phase",
                fix="set PHASE." + key + f" for one of: {', '.join(p.name for p in self.phases)}",
            )
        try:
            return replace(self, profile=override(self.profile, **{key: value}))
        except UsageError as exc:
            raise UsageError(exc.problem.replace(f"profile {self.profile.name!r}: ", "")) from None


def _probe(name: str, field: str, value: object) -> Any:
    """``value`` validated and normalised as the profile field ``field`` (one validator for all)."""
    base = replace(BUILTIN_PROFILES["normal"], name=name)
    try:
        return getattr(override(base, **{field: value}), field)
    except UsageError as exc:
        raise UsageError(exc.problem.replace(f"profile {name!r}: ", ""), fix=exc.fix_text) from None


def _fraction(value: object) -> float | None:
    text = str(value).strip().lower()
    if text in ("none", "off", ""):
        return None
    try:
        number = float(text.removesuffix("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        number = -1.0
    if not 0 <= number <= 1:
        raise UsageError(f"rps_floor must be a fraction 0..1 or a percentage like 95%, got {value!r}")
    return number


def accepted_fields(scenario: Scenario | None = None) -> list[str]:
    """The FIELD names ``--mcpswarm-set SCENARIO.FIELD=VALUE`` accepts."""
    profile = [f for f in PROFILE_FIELDS if not (scenario and scenario.phases and f in PHASE_FIELDS)]
    phases = [f"{p.name}.{f}" for p in scenario.phases for f in PHASE_FIELDS] if scenario else ["PHASE.FIELD"]
    return [*profile, *SCENARIO_FIELDS, *phases]


# -- the built-in scenarios --------------------------------------------------------------

_P = BUILTIN_PROFILES
_SCENARIOS: Final = (
    Scenario(
        "baseline",
        override(_P["normal"], duration_s=300),
        "Steady state under the normal profile (25 clients x 100 msg/s, about 2.5K msg/s) for 5 min; "
        "the first 30 s are warm-up and excluded from every statistic.",
        warmup_s=30,
        sla="p95<100ms, p99<200ms, error_rate<0.1%",
        rps_floor=0.95,
    ),
    Scenario(
        "connection-flood",
        replace(_P["low-load"], rate=10),
        "Connection handling: 0 -> 500 connections over 5 min, each at 10 msg/s of the low-load mix, "
        "3 min at 500, then down to 25 over 2 min.  Reports peak connections, connect failures, the "
        "error rate and p95 at the peak.",
        phases=(
            Phase("ramp-up", 300, 500, 10, ramp=True),
            Phase("peak", 180, 500, 10),
            Phase("cool-down", 120, 25, 10, ramp=True),
        ),
        sla="error_rate<0.1%, p95<200ms",
        peak_phase="peak",
    ),
    Scenario(
        "message-bombing",
        _P["message-bomber"],
        "Capacity limit: 20 clients sending ping, 30 s at 100 msg/s each, 5 min bombing at 10K msg/s "
        "each (about 200K msg/s), 2 min cool-down at 100 msg/s.  Reports peak throughput, degradation "
        "(bombing p99 / init p99), the error rate per phase and the recovery time.",
        phases=(
            Phase("init", 30, 20, 100),
            Phase("bombing", 300, 20, 10_000),
            Phase("cool-down", 120, 20, 100),
        ),
        sla="error_rate<1%",
        stress_phase="bombing",
        reference_phase="init",
    ),
    Scenario(
        "high-load",
        override(_P["high-load"], duration_s=120),
        "The high-load profile (50 clients x 1000 msg/s, 2 KB) for 2 min.",
        sla="p99<500ms, error_rate<0.1%",
        rps_floor=0.95,
    ),
    Scenario(
        "low-load",
        override(_P["low-load"], duration_s=120),
        "The low-load profile (10 clients x 10 msg/s, 256 B) for 2 min.",
        sla="p99<100ms, error_rate<0.1%",
        rps_floor=0.95,
    ),
    Scenario(
        "slow-client",
        override(_P["slow-client"], duration_s=120),
        "The slow-client profile (5 clients x 1 msg/s, 1 KB) for 2 min: long idle gaps per connection.",
        sla="p99<100ms, error_rate<0.1%",
    ),
)
SCENARIOS: Final[Mapping[str, Scenario]] = MappingProxyType({s.name: s for s in _SCENARIOS})


def get_scenario(name: str) -> Scenario:
    """A built-in scenario, or a flat one over the built-in profile of that name."""
    if name in SCENARIOS:
        return SCENARIOS[name]
    if name in BUILTIN_PROFILES:
        return Scenario(name, BUILTIN_PROFILES[name], BUILTIN_PROFILES[name].description)
    known = sorted({*SCENARIOS, *BUILTIN_PROFILES})
    raise UsageError(f"unknown scenario {name!r}", fix=f"use one of {', '.join(known)} or pass a Scenario")


def check_overrides(overrides: Mapping[str, str]) -> None:
    """Validate ``--mcpswarm-set`` items naming built-in scenarios now, before anything runs."""
    for key, value in overrides.items():
        scenario_name, _, field = key.partition(".")
        if scenario_name in SCENARIOS:
            SCENARIOS[scenario_name].with_overrides({field: value}, label=f"--mcpswarm-set {scenario_name}")
        elif field not in accepted_fields() and not ("." in field and field.split(".", 1)[1] in PHASE_FIELDS):
            raise UsageError(
                f"--mcpswarm-set {key}={value}: unknown field {field!r}",
                fix=f"accepted: {', '.join(accepted_fields())}",
            )
