"""The ceiling search as a pure state machine: it proposes rates and judges measured steps.

No I/O here (the websockets/h11 way): a driver asks ``next_rate()``, runs a
step at that offered rate, hands the measured ``StepResult`` to ``record()``
and repeats until ``next_rate()`` is None.  Then ``ceiling_rps``,
``last_pass``, ``first_fail`` and ``stopped_because`` say what was found.

The search:

1. **Step up** geometrically from ``start_rps`` (x ``factor``) until a step
   fails the SLA.
2. **Bisect** between the last pass and the first fail until they are within
   ``precision`` of each other.  A server past its knee answers at its
   maximum rate, so an overloaded failing step (answered < ``shortfall`` x
   offered) measures the server's throughput: that figure is tried first
   when it lies inside the bracket, and once the last pass is within
   ``precision`` of it the search has converged (no higher offered rate can
   be sustained, since the queue would grow without bound).

It stops early, and says why, when a step has errors (above
``max_error_rate``, or failed connections), when a failing step was
generator-bound (the failure may be the generator's, so it says nothing
about the server), at ``max_rps`` and after ``max_steps``.

The generator rule (``GeneratorRule.judge``) marks a step generator-bound when

- its schedule lag p99 exceeds ``lag_bound_ms`` *and* makes up at least
  half of the latency p99 (the tail is the generator's lateness, not server
  queueing); or
- requests were dropped as ``not_sent: late`` (the generator fell more than
  the lateness bound behind); or
- the achieved rate fell below ``shortfall`` x offered while the server shows
  no queueing (median latency at most twice that of the lowest passing step); or
- a generator process used more than ``cpu_bound`` of its core.

A passing step stands whatever the mark says: the server did meet the SLA at
that rate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.load import health

Phase = Literal["step-up", "bisect"]


@dataclass(frozen=True)
class StepResult:
    """What one step measured in its steady state (rates in req/s, latencies in ms)."""

    offered_rps: float
    achieved_rps: float
    passed: bool
    p50_ms: float | None = None
    p99_ms: float | None = None
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    errors_by_type: dict[str, int] = field(default_factory=dict)
    not_sent_late: int = 0
    not_sent: int = 0
    connect_failures: int = 0
    schedule_lag_p99_ms: float | None = None
    #: Busiest generator process, as a fraction of one core.
    generator_cpu: float = 0.0
    sla: list[dict[str, Any]] = field(default_factory=list)
    phase: Phase = "step-up"
    generator_bound: bool = False
    generator_reasons: tuple[str, ...] = ()
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["generator_reasons"] = list(self.generator_reasons)
        return out


@dataclass(frozen=True)
class GeneratorRule:
    """When a step counts as generator-bound; see the module docstring."""

    lag_bound_ms: float = 5.0
    #: Lag p99 must be at least this share of latency p99 to blame the generator.
    lag_share: float = 0.5
    shortfall: float = 0.9
    #: Median latency at most this many times the lowest passing step's: the server is not queueing.
    queueing_factor: float = 2.0
    cpu_bound: float = 0.9

    def judge(self, step: StepResult, baseline_p50_ms: float | None) -> tuple[str, ...]:
        """Why ``step`` is generator-bound (empty: it is not)."""
        shared = health.GeneratorRule(
            lag_bound_ms=self.lag_bound_ms, lag_share=self.lag_share, cpu_bound=self.cpu_bound
        )
        reasons = shared.reasons(
            schedule_lag_p99_ms=step.schedule_lag_p99_ms,
            latency_p99_ms=step.p99_ms,
            not_sent_late=step.not_sent_late,
            worker_cpu=[step.generator_cpu],
        )
        if step.offered_rps > 0 and step.achieved_rps < self.shortfall * step.offered_rps:
            not_queueing = (
                step.p50_ms is not None
                and baseline_p50_ms is not None
                and step.p50_ms <= self.queueing_factor * baseline_p50_ms
            )
            if not_queueing:
                reasons.append(
                    f"achieved {step.achieved_rps:.0f} of {step.offered_rps:.0f} req/s offered while the "
                    f"server shows no queueing (p50 {step.p50_ms:.2f} ms vs {baseline_p50_ms:.2f} ms at the "
                    "lowest passing rate)"
                )
        return tuple(reasons)


class CeilingSearch:
    """Proposes the next offered rate and folds in each step's result."""

    def __init__(
        self,
        start_rps: float,
        *,
        factor: float = 2.0,
        precision: float = 0.05,
        max_rps: float | None = None,
        max_steps: int = 16,
        max_error_rate: float = 0.01,
        rule: GeneratorRule | None = None,
    ) -> None:
        for name, value, ok in (
            ("start rate", start_rps, start_rps > 0),
            ("step factor", factor, factor > 1),
            ("precision", precision, 0 < precision < 1),
            ("max error rate", max_error_rate, 0 <= max_error_rate < 1),
        ):
            if not (math.isfinite(value) and ok):
                raise UsageError(f"ceiling search: {name} {value!r} is out of range")
        if max_rps is not None and not max_rps >= start_rps:
            raise UsageError(f"ceiling search: max rate {max_rps!r} is below the start rate {start_rps!r}")
        if max_steps < 1:
            raise UsageError(f"ceiling search: max steps must be >= 1, got {max_steps!r}")
        self.start_rps = float(start_rps)
        self.factor = factor
        self.precision = precision
        self.max_rps = max_rps
        self.max_steps = max_steps
        self.max_error_rate = max_error_rate
        self.rule = rule or GeneratorRule()
        self.steps: list[StepResult] = []
        self.last_pass: StepResult | None = None
        self.first_fail: StepResult | None = None
        self.stopped_because: str | None = None
        self._next: float | None = self.start_rps
        self._tried_hint = False

    @property
    def phase(self) -> Phase:
        return "step-up" if self.first_fail is None else "bisect"

    @property
    def done(self) -> bool:
        return self._next is None

    @property
    def ceiling_rps(self) -> float | None:
        """The highest offered rate that met the SLA (None: no step passed)."""
        return self.last_pass.offered_rps if self.last_pass is not None else None

    def next_rate(self) -> float | None:
        return self._next

    def baseline_p50_ms(self, extra: StepResult | None = None) -> float | None:
        """Median latency of the lowest-rate passing step: the unloaded reference (None before a pass)."""
        candidates = (*self.steps, *([extra] if extra else []))
        measured = [s for s in candidates if s.passed and s.p50_ms is not None]
        return min(measured, key=lambda s: s.offered_rps).p50_ms if measured else None

    def judge(self, step: StepResult) -> StepResult:
        """``step`` with its phase and generator mark filled in (the baseline includes ``step``)."""
        reasons = self.rule.judge(step, self.baseline_p50_ms(step))
        return replace(step, phase=self.phase, generator_bound=bool(reasons), generator_reasons=reasons)

    def record(self, step: StepResult) -> StepResult:
        """Fold in a measured step; returns it judged.  Decides the next rate (or stops)."""
        if self._next is None:
            raise RuntimeError("the ceiling search is over; no more steps to record")
        step = self.judge(step)
        self.steps.append(step)
        rate = step.offered_rps
        if step.connect_failures or step.error_rate > self.max_error_rate:
            self._fail(step)
            kinds = ", ".join(f"{k} x{n}" for k, n in sorted(step.errors_by_type.items())) or "none recorded"
            what = f"{step.connect_failures} failed connections; " if step.connect_failures else ""
            return self._stop(
                step,
                f"errors at {rate:.0f} req/s ({what}error rate {step.error_rate:.2%} > "
                f"{self.max_error_rate:.2%}; {kinds})",
            )
        if step.passed:
            if self.last_pass is None or rate > self.last_pass.offered_rps:
                self.last_pass = step
        elif step.generator_bound:
            return self._stop(
                step,
                f"generator-bound at {rate:.0f} req/s: {'; '.join(step.generator_reasons)} — "
                "the failure may be "
                "the generator's, so the ceiling is only known to be at least the last pass; add workers or "
                "generator machines",
            )
        else:
            self._fail(step)
        if len(self.steps) >= self.max_steps:
            return self._stop(step, f"step budget of {self.max_steps} steps used up")
        if self.first_fail is None:
            nxt = rate * self.factor
            if self.max_rps is not None and nxt > self.max_rps:
                if rate >= self.max_rps:
                    return self._stop(
                        step, f"reached the maximum rate {self.max_rps:g} req/s without failing"
                    )
                nxt = self.max_rps
            self._next = nxt
            return step
        if self.last_pass is None:
            return self._stop(
                step, f"the first step ({rate:.0f} req/s) already fails the SLA; lower the start rate"
            )
        low, high = self.last_pass.offered_rps, self.first_fail.offered_rps
        if high <= low * (1 + self.precision):
            return self._stop(step, f"converged: last pass and first fail within {self.precision:.0%}")
        peak = self.peak_overloaded_rps()
        if peak is not None and low >= peak * (1 - self.precision):
            return self._stop(
                step,
                f"converged: the last pass ({low:.0f} req/s) is within {self.precision:.0%} of the most an "
                f"overloaded step got answered ({peak:.0f} req/s); a higher offered rate cannot be sustained",
            )
        hint = peak if peak is not None else high
        if not self._tried_hint and low * (1 + self.precision / 2) < hint < high:
            self._tried_hint = True
            self._next = hint
        else:
            self._next = (low + high) / 2
        return step

    def peak_overloaded_rps(self) -> float | None:
        """The most answered per second by a failing step that fell short of its offered rate."""
        short = [
            s.achieved_rps
            for s in self.steps
            if not s.passed and not s.generator_bound and s.achieved_rps < self.rule.shortfall * s.offered_rps
        ]
        return max(short, default=None)

    def _fail(self, step: StepResult) -> None:
        if self.first_fail is None or step.offered_rps < self.first_fail.offered_rps:
            self.first_fail = step

    def _stop(self, step: StepResult, why: str) -> StepResult:
        self._next = None
        self.stopped_because = why
        return step

    def to_dict(self) -> dict[str, Any]:
        """The ``ceiling`` object of the JSON report."""
        return {
            "rps": self.ceiling_rps,
            "last_pass": self.last_pass.to_dict() if self.last_pass else None,
            "first_fail": self.first_fail.to_dict() if self.first_fail else None,
            "steps": [s.to_dict() for s in self.steps],
            "stopped_because": self.stopped_because,
            "generator_bound": any(s.generator_bound and not s.passed for s in self.steps),
            "search": {
                "start_rps": self.start_rps,
                "factor": self.factor,
                "precision": self.precision,
                "max_rps": self.max_rps,
                "max_steps": self.max_steps,
                "max_error_rate": self.max_error_rate,
                "generator_rule": asdict(self.rule),
            },
        }
