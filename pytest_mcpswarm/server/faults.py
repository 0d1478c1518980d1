"""Fault modes of the reference server: ``--fault SPEC`` parsing (pure) and the seeded injector.

The injector decides, per reply, whether to misbehave.  It owns its own
``random.Random`` so a run with ``--seed`` makes the same decisions for the
same request order, and it counts every fault it injects so load-engine tests
can compare what they observed with what was done to them.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Final, Literal

from pytest_mcpswarm.errors import UsageError

ACCEPTED_FORMS: Final = (
    "delay:exp:MEAN (e.g. delay:exp:5ms), delay:uniform:MIN-MAX (e.g. delay:uniform:1ms-10ms), "
    "delay:fixed:D, stall:PAUSE/EVERY (e.g. stall:500ms/2s), drop:P%, malformed:P%, error:P%, close:P% "
    "(durations in us, ms or s; P between 0 and 100)"
)

#: Per-reply misbehaviours, tried in this order with one draw each: the first hit wins.
ReplyFault = Literal["close", "drop", "malformed", "error"]
REPLY_FAULTS: Final[tuple[ReplyFault, ...]] = ("close", "drop", "malformed", "error")
FAULT_KINDS: Final = ("delay", "stall", *REPLY_FAULTS)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s)\s*$")
_UNIT_SECONDS: Final = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def _bad(spec: str, why: str) -> UsageError:
    return UsageError(f"--fault {spec!r}: {why}", fix=f"accepted forms: {ACCEPTED_FORMS}")


def parse_duration(text: str, spec: str) -> float:
    """``"5ms"`` -> 0.005 seconds; units are mandatory so ``5`` is never silently read as seconds."""
    m = _DURATION.match(text)
    if m is None:
        raise _bad(spec, f"{text!r} is not a duration")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]


@dataclass(frozen=True)
class DelayDist:
    kind: Literal["exp", "uniform", "fixed"]
    a: float  # mean (exp), min (uniform) or the value (fixed), seconds
    b: float = 0.0  # max (uniform)

    def sample(self, rng: random.Random) -> float:
        if self.kind == "exp":
            return rng.expovariate(1.0 / self.a) if self.a > 0 else 0.0
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        return self.a


@dataclass(frozen=True)
class Stall:
    pause_s: float
    every_s: float


@dataclass(frozen=True)
class FaultPlan:
    """Every ``--fault`` of one run, merged; empty means a well-behaved server."""

    delays: tuple[DelayDist, ...] = ()
    stall: Stall | None = None
    #: Probabilities in [0, 1], in REPLY_FAULTS order.
    reply: tuple[tuple[ReplyFault, float], ...] = ()
    specs: tuple[str, ...] = field(default=(), compare=False)

    @property
    def empty(self) -> bool:
        return not (self.delays or self.stall or self.reply)


def parse_fault(spec: str) -> FaultPlan:
    """One ``--fault`` value -> a one-fault plan; raises UsageError naming the accepted forms."""
    kind, _, rest = spec.strip().partition(":")
    if kind == "delay":
        dist, _, arg = rest.partition(":")
        if dist == "exp":
            return FaultPlan(delays=(DelayDist("exp", parse_duration(arg, spec)),), specs=(spec,))
        if dist == "fixed":
            return FaultPlan(delays=(DelayDist("fixed", parse_duration(arg, spec)),), specs=(spec,))
        if dist == "uniform":
            lo_text, sep, hi_text = arg.partition("-")
            if not sep:
                raise _bad(spec, "uniform needs MIN-MAX")
            lo, hi = parse_duration(lo_text, spec), parse_duration(hi_text, spec)
            if hi < lo:
                raise _bad(spec, "MIN must not exceed MAX")
            return FaultPlan(delays=(DelayDist("uniform", lo, hi),), specs=(spec,))
        raise _bad(spec, f"unknown delay distribution {dist!r}")
    if kind == "stall":
        pause_text, sep, every_text = rest.partition("/")
        if not sep:
            raise _bad(spec, "stall needs PAUSE/EVERY")
        pause, every = parse_duration(pause_text, spec), parse_duration(every_text, spec)
        if pause <= 0 or every <= pause:
            raise _bad(spec, "stall needs 0 < PAUSE < EVERY")
        return FaultPlan(stall=Stall(pause, every), specs=(spec,))
    if kind in REPLY_FAULTS:
        m = _PERCENT.match(rest)
        if m is None or float(m.group(1)) > 100:
            raise _bad(spec, f"{kind} needs a percentage such as {kind}:1%")
        return FaultPlan(reply=((kind, float(m.group(1)) / 100.0),), specs=(spec,))
    raise _bad(spec, f"unknown fault kind {kind!r}")


def parse_faults(specs: list[str] | tuple[str, ...]) -> FaultPlan:
    """Merge several ``--fault`` values: delays add up, one stall at most, one rate per reply fault."""
    delays: list[DelayDist] = []
    stall: Stall | None = None
    rates: dict[ReplyFault, float] = {}
    for spec in specs:
        one = parse_fault(spec)
        delays.extend(one.delays)
        if one.stall is not None:
            if stall is not None:
                raise _bad(spec, "only one stall fault may be given")
            stall = one.stall
        for kind, p in one.reply:
            if kind in rates:
                raise _bad(spec, f"{kind} is given twice")
            rates[kind] = p
    reply = tuple((k, rates[k]) for k in REPLY_FAULTS if k in rates and rates[k] > 0)
    return FaultPlan(delays=tuple(delays), stall=stall, reply=reply, specs=tuple(specs))


class FaultInjector:
    """Seeded decisions plus the count of every fault actually injected."""

    __slots__ = ("counts", "plan", "rng")

    def __init__(self, plan: FaultPlan, seed: int | None) -> None:
        self.plan = plan
        self.rng = random.Random(seed)
        self.counts: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)

    def extra_delay(self) -> float:
        """Seconds of injected service delay for one call (0.0 when no delay fault is set)."""
        if not self.plan.delays:
            return 0.0
        self.counts["delay"] += 1
        return sum(d.sample(self.rng) for d in self.plan.delays)

    def reply_fault(self) -> ReplyFault | None:
        """Which misbehaviour (if any) this reply gets; counted here, where it is decided."""
        rng = self.rng
        for kind, p in self.plan.reply:
            if rng.random() < p:
                self.counts[kind] += 1
                return kind
        return None

    def count_stall(self) -> None:
        self.counts["stall"] += 1
