"""Run the ceiling search: each proposed rate becomes one open-model run, judged on its steady state.

``search_ceiling`` is the async driver; ``find_ceiling`` is the same for
synchronous callers (a pytest test or fixture)::

    from pytest_mcpswarm.capacity import find_ceiling

    report = find_ceiling("ws://127.0.0.1:8080/mcp/ws", "p99<100ms", profile="normal")
    assert report.ceiling_rps is not None and report.ceiling_rps >= 2000, report.summary()

Each step is a fresh run of ``warmup_s + hold_s`` seconds at one offered
rate spread over the profile's connections.  The first ``warmup_s``
one-second windows are left out of its figures, and so is the drain after
the schedule ends (``steady``).  The request timeout is short by default
(3x the largest latency limit of the SLA, at least 2 s) so that an
overloaded step does not spend half a minute draining its queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pytest_mcpswarm.capacity.search import CeilingSearch, GeneratorRule, StepResult
from pytest_mcpswarm.capacity.steady import SteadyView, steady_series
from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.load.controller import RunResult, run_workers
from pytest_mcpswarm.load.plan import RunPlan, plan_from_profile
from pytest_mcpswarm.load.profiles import Profile, get_profile, override
from pytest_mcpswarm.report import document
from pytest_mcpswarm.sla import Sla, evaluate, parse_sla

Runner = Callable[[RunPlan], Awaitable[RunResult]]
OnStep = Callable[[StepResult], None]

#: Default first offered rate (req/s): low enough for any server, reached 2x per step.
DEFAULT_START_RPS = 50.0


@dataclass
class CeilingReport:
    """The finished search plus the runs behind its last pass and first fail."""

    search: CeilingSearch
    target: str
    profile: str
    sla: str
    warmup_s: int
    hold_s: int
    workers: int
    runs: dict[int, RunResult] = field(default_factory=dict)

    @property
    def ceiling_rps(self) -> float | None:
        return self.search.ceiling_rps

    @property
    def stopped_because(self) -> str | None:
        return self.search.stopped_because

    def to_dict(self) -> dict[str, Any]:
        """The top-level ``ceiling`` object."""
        out = self.search.to_dict()
        out |= {
            "target": self.target,
            "profile": self.profile,
            "sla": self.sla,
            "warmup_s": self.warmup_s,
            "hold_s": self.hold_s,
            "workers": self.workers,
        }
        return out

    def document(self) -> dict[str, Any]:
        """An ``mcpswarm/1`` document: ``ceiling`` plus the last-pass and first-fail runs as scenarios."""
        scenarios = []
        for label, step in (("last pass", self.search.last_pass), ("first fail", self.search.first_fail)):
            if step is None:
                continue
            run = self.runs.get(_index_of(self.search.steps, step))
            if run is not None:
                name = f"ceiling {label} @ {step.offered_rps:.0f} req/s"
                scenarios.append(document.scenario(name, run, profile=self.profile, backend="external"))
        return document.document(scenarios) | {"ceiling": self.to_dict()}

    def summary(self) -> str:
        rps = self.ceiling_rps
        head = "no step met the SLA" if rps is None else f"ceiling {rps:,.0f} req/s"
        return f"{head} (SLA {self.sla}); stopped: {self.stopped_because}"


def _index_of(steps: list[StepResult], step: StepResult) -> int:
    return next(i for i, s in enumerate(steps) if s is step)


def _timeout_for(sla: Sla) -> float:
    limits = [c.threshold / 1e6 for c in sla.checks if c.unit in ("us", "µs", "ms", "s")]
    return min(30.0, max(2.0, 3 * max(limits, default=0.0)))


def step_plan(
    profile: Profile, target: str, rate: float, *, warmup_s: int, hold_s: int, timeout_s: float
) -> RunPlan:
    """One step: ``rate`` req/s in total over the profile's connections, open model, flat."""
    flat = override(
        profile,
        rate=rate / profile.clients,
        duration_s=warmup_s + hold_s,
        executor="open",
        churn_calls=0,
    )
    return plan_from_profile(flat, target=target, timeout_s=timeout_s, warmup_s=float(warmup_s))


def measure_step(run: RunResult, sla: Sla, *, offered_rps: float, warmup_s: int, hold_s: int) -> StepResult:
    """A step's steady-state figures and SLA verdict (not yet judged for generator saturation)."""
    view = SteadyView(steady_series(run.snapshot.series, warmup_s, warmup_s + hold_s))
    outcome = evaluate(sla, view)
    totals = run.snapshot.outcomes
    sent = totals.ok + totals.errors + totals.timeouts
    p50, p99 = view.overall("p50"), view.overall("p99")
    lag = run.schedule_lag
    seconds = run.plan.duration_s
    return StepResult(
        offered_rps=offered_rps,
        achieved_rps=view.overall("rps") or 0.0,
        passed=outcome.passed,
        p50_ms=None if p50 is None else p50 / 1000,
        p99_ms=None if p99 is None else p99 / 1000,
        error_rate=totals.errors / sent if sent else 0.0,
        timeout_rate=totals.timeouts / sent if sent else 0.0,
        errors_by_type=dict(totals.errors_by_type) | dict(run.connect_errors),
        not_sent_late=totals.not_sent_by_reason.get("late", 0),
        not_sent=totals.not_sent,
        connect_failures=run.connections.get("failed", 0),
        schedule_lag_p99_ms=lag.percentile(99) / 1000 if lag.total_count else None,
        generator_cpu=run.cpu_s / (seconds * run.workers) if seconds and run.workers else 0.0,
        sla=[r.to_dict() for r in outcome.results],
        seconds=seconds,
    )


async def search_ceiling(
    target: str,
    sla: str | Sla,
    *,
    profile: str | Profile = "normal",
    warmup_s: int = 1,
    hold_s: int = 5,
    start_rps: float = DEFAULT_START_RPS,
    factor: float = 2.0,
    precision: float = 0.05,
    max_rps: float | None = None,
    max_steps: int = 16,
    max_error_rate: float = 0.01,
    rule: GeneratorRule | None = None,
    workers: int = 1,
    timeout_s: float | None = None,
    runner: Runner | None = None,
    on_step: OnStep | None = None,
) -> CeilingReport:
    """Find the highest offered rate whose steady state meets ``sla``; see the module docstring."""
    parsed = parse_sla(sla) if isinstance(sla, str) else sla
    prof = get_profile(profile) if isinstance(profile, str) else profile
    if warmup_s < 0 or hold_s < 1:
        raise UsageError(f"a step needs warm-up >= 0 s and hold >= 1 s, got {warmup_s} and {hold_s}")
    if workers < 1:
        raise UsageError(f"--workers must be >= 1, got {workers}")
    search = CeilingSearch(
        start_rps,
        factor=factor,
        precision=precision,
        max_rps=max_rps,
        max_steps=max_steps,
        max_error_rate=max_error_rate,
        rule=rule,
    )
    timeout = timeout_s if timeout_s is not None else _timeout_for(parsed)
    n_workers = max(1, min(workers, prof.clients))

    async def default_runner(plan: RunPlan) -> RunResult:
        return await run_workers(plan, n_workers)

    run = runner or default_runner
    report = CeilingReport(search, target, prof.name, str(parsed), warmup_s, hold_s, n_workers)
    while (rate := search.next_rate()) is not None:
        plan = step_plan(prof, target, rate, warmup_s=warmup_s, hold_s=hold_s, timeout_s=timeout)
        result = await run(plan)
        step = search.record(measure_step(result, parsed, offered_rps=rate, warmup_s=warmup_s, hold_s=hold_s))
        report.runs[len(search.steps) - 1] = result
        # Keep only what the report shows: the last pass and the first fail.
        keep = {_index_of(search.steps, s) for s in (search.last_pass, search.first_fail) if s is not None}
        report.runs = {i: r for i, r in report.runs.items() if i in keep}
        if on_step is not None:
            on_step(step)
    return report


def find_ceiling(target: str, sla: str | Sla, **options: Any) -> CeilingReport:
    """``search_ceiling`` for synchronous callers (tests, fixtures); not from inside a running loop."""
    return asyncio.run(search_ceiling(target, sla, **options))
