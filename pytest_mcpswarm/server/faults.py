"""Fault modes of the reference server: ``--fault SPEC`` parsing (pure) and the seeded injector.

The injector decides, per reply and per connection, whether to misbehave.  It
owns its own ``random.Random`` so a run with ``--seed`` makes the same
decisions for the same request order, and it counts every fault it injects so
load-engine tests can compare what they observed with what was done to them.

Every spec may end in a time window, ``@START-END`` (``@2s-4s``, ``@10s-`` for
"from 10 s on"), measured from the worker's start (``fault_clock_unix`` in
``/stats``); outside its window a fault is not injected and not counted.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

from pytest_mcpswarm.errors import UsageError

ACCEPTED_FORMS: Final = (
    "delay:exp:MEAN (e.g. delay:exp:5ms), delay:uniform:MIN-MAX (e.g. delay:uniform:1ms-10ms), "
    "delay:fixed:D, stall:PAUSE/EVERY (e.g. stall:500ms/2s), drop:P%, malformed:P%, error:P%, close:P%, "
    "refuse:P% or refuse:after:N (accept, then reset new connections), "
    "slowread:RATE (read each connection at RATE bytes/s, e.g. slowread:16KB/s), "
    "cpu:D (burn D of CPU in every tools/call, blocking the worker: at most 1/D calls/s per worker, "
    "e.g. cpu:2ms), "
    "version:REV (answer initialize/server/discover with revision REV only); "
    "any of them may end in @START-END to be active only then, e.g. error:50%@2s-4s or drop:1%@10s- "
    "(durations in us, ms or s; P between 0 and 100; RATE in B/s, KB/s or MB/s)"
)

#: Per-reply misbehaviours, tried in this order with one draw each: the first hit wins.
ReplyFault = Literal["close", "drop", "malformed", "error"]
REPLY_FAULTS: Final[tuple[ReplyFault, ...]] = ("close", "drop", "malformed", "error")
FAULT_KINDS: Final = ("delay", "stall", *REPLY_FAULTS, "refuse", "slowread", "version", "cpu")
#: Faults that cost time rather than events; their seconds are reported next to their counts.
TIMED_FAULTS: Final = ("stall", "slowread", "cpu")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s)\s*$")
_UNIT_SECONDS: Final = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB)/s\s*$", re.IGNORECASE)
_RATE_UNITS: Final = {"b": 1, "kb": 1024, "mb": 1024 * 1024}
_VERSION = re.compile(r"^[\x21-\x7e]{1,64}$")


def _bad(spec: str, why: str) -> UsageError:
    return UsageError(f"--fault {spec!r}: {why}", fix=f"accepted forms: {ACCEPTED_FORMS}")


def parse_duration(text: str, spec: str) -> float:
    """``"5ms"`` -> 0.005 seconds; units are mandatory so ``5`` is never silently read as seconds."""
    m = _DURATION.match(text)
    if m is None:
        raise _bad(spec, f"{text!r} is not a duration")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def _percent(kind: str, text: str, spec: str) -> float:
    m = _PERCENT.match(text)
    if m is None or float(m.group(1)) > 100:
        raise _bad(spec, f"{kind} needs a percentage such as {kind}:1%")
    return float(m.group(1)) / 100.0


@dataclass(frozen=True)
class TimeWindow:
    """``[start_s, end_s)`` seconds after the worker started; ``end_s`` None means "until it stops"."""

    start_s: float = 0.0
    end_s: float | None = None

    def contains(self, t: float) -> bool:
        return self.start_s <= t and (self.end_s is None or t < self.end_s)


def parse_window(text: str, spec: str) -> TimeWindow:
    """``"2s-4s"`` -> TimeWindow(2, 4); ``"10s-"`` and ``"-3s"`` leave one side open."""
    start_text, sep, end_text = text.partition("-")
    if not sep:
        raise _bad(spec, f"time window {text!r} needs START-END, e.g. @2s-4s")
    start = parse_duration(start_text, spec) if start_text.strip() else 0.0
    end = parse_duration(end_text, spec) if end_text.strip() else None
    if end is not None and end <= start:
        raise _bad(spec, "a time window needs START < END")
    return TimeWindow(start, end)


@dataclass(frozen=True)
class DelayDist:
    kind: Literal["exp", "uniform", "fixed"]
    a: float  # mean (exp), min (uniform) or the value (fixed), seconds
    b: float = 0.0  # max (uniform)
    window: TimeWindow | None = None

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
class Refuse:
    """Reset new connections: each with probability ``p``, or every one after the first ``after``."""

    p: float = 0.0
    after: int | None = None


@dataclass(frozen=True)
class FaultPlan:
    """Every ``--fault`` of one run, merged; empty means a well-behaved server."""

    delays: tuple[DelayDist, ...] = ()
    stall: Stall | None = None
    #: Probabilities in [0, 1], in REPLY_FAULTS order.
    reply: tuple[tuple[ReplyFault, float], ...] = ()
    refuse: Refuse | None = None
    #: Bytes per second each connection is read at.
    slowread_bps: float | None = None
    #: The only revision ``initialize`` and ``server/discover`` admit to.
    version: str | None = None
    #: CPU seconds burnt in every tools/call (a CPU-bound server, for bottleneck attribution).
    cpu_s: float | None = None
    #: Time windows of every kind except delay (each delay carries its own).
    windows: tuple[tuple[str, TimeWindow], ...] = ()
    specs: tuple[str, ...] = field(default=(), compare=False)

    @property
    def empty(self) -> bool:
        return not (
            self.delays
            or self.stall
            or self.reply
            or self.refuse
            or self.slowread_bps
            or self.version
            or self.cpu_s
        )

    def window(self, kind: str) -> TimeWindow | None:
        return dict(self.windows).get(kind)


def parse_fault(spec: str) -> FaultPlan:
    """One ``--fault`` value -> a one-fault plan; raises UsageError naming the accepted forms."""
    body, at, window_text = spec.strip().rpartition("@")
    if not at:
        body, window_text = spec.strip(), ""
    window = parse_window(window_text, spec) if at else None
    kind, _, rest = body.partition(":")
    windows = ((kind, window),) if window is not None else ()
    if kind == "delay":
        dist, _, arg = rest.partition(":")
        if dist in ("exp", "fixed"):
            delay = DelayDist(dist, parse_duration(arg, spec), window=window)  # type: ignore[arg-type]
        elif dist == "uniform":
            lo_text, sep, hi_text = arg.partition("-")
            if not sep:
                raise _bad(spec, "uniform needs MIN-MAX")
            lo, hi = parse_duration(lo_text, spec), parse_duration(hi_text, spec)
            if hi < lo:
                raise _bad(spec, "MIN must not exceed MAX")
            delay = DelayDist("uniform", lo, hi, window)
        else:
            raise _bad(spec, f"unknown delay distribution {dist!r}")
        return FaultPlan(delays=(delay,), specs=(spec,))
    if kind == "stall":
        pause_text, sep, every_text = rest.partition("/")
        if not sep:
            raise _bad(spec, "stall needs PAUSE/EVERY")
        pause, every = parse_duration(pause_text, spec), parse_duration(every_text, spec)
        if pause <= 0 or every <= pause:
            raise _bad(spec, "stall needs 0 < PAUSE < EVERY")
        return FaultPlan(stall=Stall(pause, every), windows=windows, specs=(spec,))
    if kind in REPLY_FAULTS:
        return FaultPlan(reply=((kind, _percent(kind, rest, spec)),), windows=windows, specs=(spec,))
    if kind == "refuse":
        mode, _, count = rest.partition(":")
        if mode == "after":
            if not count.strip().isdigit():
                raise _bad(spec, "refuse:after needs a whole number of connections, e.g. refuse:after:10")
            refuse = Refuse(after=int(count))
        else:
            refuse = Refuse(p=_percent(kind, rest, spec))
        return FaultPlan(refuse=refuse, windows=windows, specs=(spec,))
    if kind == "slowread":
        m = _RATE.match(rest)
        if m is None or float(m.group(1)) <= 0:
            raise _bad(spec, "slowread needs a positive rate such as slowread:16KB/s")
        rate = float(m.group(1)) * _RATE_UNITS[m.group(2).lower()]
        return FaultPlan(slowread_bps=rate, windows=windows, specs=(spec,))
    if kind == "version":
        if _VERSION.match(rest) is None:
            raise _bad(spec, "version needs a revision string such as version:2099-01-01")
        return FaultPlan(version=rest, windows=windows, specs=(spec,))
    if kind == "cpu":
        cpu = parse_duration(rest, spec)
        if cpu <= 0:
            raise _bad(spec, "cpu needs a positive duration such as cpu:2ms")
        return FaultPlan(cpu_s=cpu, windows=windows, specs=(spec,))
    raise _bad(spec, f"unknown fault kind {kind!r}")


def parse_faults(specs: list[str] | tuple[str, ...]) -> FaultPlan:
    """Merge several ``--fault`` values: delays add up, every other kind may be given once."""
    delays: list[DelayDist] = []
    rates: dict[ReplyFault, float] = {}
    singles: dict[str, object] = {}
    windows: dict[str, TimeWindow] = {}
    for spec in specs:
        one = parse_fault(spec)
        delays.extend(one.delays)
        for kind, p in one.reply:
            if kind in rates:
                raise _bad(spec, f"{kind} is given twice")
            rates[kind] = p
        for single, value in (
            ("stall", one.stall),
            ("refuse", one.refuse),
            ("slowread", one.slowread_bps),
            ("version", one.version),
            ("cpu", one.cpu_s),
        ):
            if value is not None:
                if single in singles:
                    raise _bad(spec, f"only one {single} fault may be given")
                singles[single] = value
        windows.update(one.windows)
    reply = tuple((k, rates[k]) for k in REPLY_FAULTS if k in rates and rates[k] > 0)
    stall, refuse = singles.get("stall"), singles.get("refuse")
    slowread, version = singles.get("slowread"), singles.get("version")
    cpu = singles.get("cpu")
    assert stall is None or isinstance(stall, Stall)
    assert refuse is None or isinstance(refuse, Refuse)
    assert slowread is None or isinstance(slowread, float)
    assert version is None or isinstance(version, str)
    assert cpu is None or isinstance(cpu, float)
    return FaultPlan(
        delays=tuple(delays),
        stall=stall,
        reply=reply,
        refuse=refuse,
        slowread_bps=slowread,
        version=version,
        cpu_s=cpu,
        windows=tuple(sorted(windows.items())),
        specs=tuple(specs),
    )


class FaultInjector:
    """Seeded decisions plus the count of every fault actually injected.

    ``clock`` (monotonic seconds) is injectable so windows can be tested without sleeping.
    """

    __slots__ = ("_accepted", "_clock", "_t0", "_windows", "counts", "epoch_unix", "plan", "rng", "seconds")

    def __init__(
        self, plan: FaultPlan, seed: int | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.plan = plan
        self.rng = random.Random(seed)
        self.counts: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)
        self.seconds: dict[str, float] = dict.fromkeys(TIMED_FAULTS, 0.0)
        self._clock = clock
        self._t0 = clock()
        #: Wall-clock time the windows are measured from (reported at /stats).
        self.epoch_unix = time.time()
        self._windows = dict(plan.windows)
        self._accepted = 0

    def elapsed(self) -> float:
        return self._clock() - self._t0

    def active(self, kind: str) -> bool:
        """Is ``kind`` inside its time window now (always, when it has none)?"""
        window = self._windows.get(kind)
        return window is None or window.contains(self._clock() - self._t0)

    def extra_delay(self) -> float:
        """Seconds of injected service delay for one call (0.0 when no delay fault is active)."""
        if not self.plan.delays:
            return 0.0
        t = self.elapsed()
        total, hit = 0.0, False
        for d in self.plan.delays:
            if d.window is None or d.window.contains(t):
                total += d.sample(self.rng)
                hit = True
        if hit:
            self.counts["delay"] += 1
        return total

    def reply_fault(self) -> ReplyFault | None:
        """Which misbehaviour (if any) this reply gets; counted here, where it is decided."""
        rng = self.rng
        for kind, p in self.plan.reply:
            if rng.random() < p and (not self._windows or self.active(kind)):
                self.counts[kind] += 1
                return kind
        return None

    def refuse_connection(self) -> bool:
        """Should this new connection be reset at once?  Counted when it is."""
        refuse = self.plan.refuse
        if refuse is None:
            return False
        self._accepted += 1
        hit = self._accepted > refuse.after if refuse.after is not None else self.rng.random() < refuse.p
        if hit and self.active("refuse"):
            self.counts["refuse"] += 1
            return True
        return False

    def slowread_rate(self) -> float | None:
        """Bytes per second a connection may be read at now; None when reads are not throttled."""
        rate = self.plan.slowread_bps
        if rate is None or not self.active("slowread"):
            return None
        return rate

    def count_slowread(self, pause_s: float) -> None:
        self.counts["slowread"] += 1
        self.seconds["slowread"] += pause_s

    def wrong_version(self) -> str | None:
        """The revision a handshake must be answered with now, counted; None for an honest answer."""
        version = self.plan.version
        if version is None or not self.active("version"):
            return None
        self.counts["version"] += 1
        return version

    def burn_cpu(self) -> None:
        """Spend the cpu fault's CPU seconds on this thread now (a busy loop), counted; no-op outside it."""
        cpu = self.plan.cpu_s
        if cpu is None or not self.active("cpu"):
            return
        # Thread CPU time, not wall time: a preempted worker still burns the full amount.
        end = time.thread_time() + cpu
        while time.thread_time() < end:
            pass
        self.counts["cpu"] += 1
        self.seconds["cpu"] += cpu

    def count_stall(self, pause_s: float = 0.0) -> None:
        self.counts["stall"] += 1
        self.seconds["stall"] += pause_s
