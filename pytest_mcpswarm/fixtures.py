"""The ``mcpswarm_stack`` and ``mcpswarm`` fixtures, and the plain runner behind them.

``ScenarioRunner`` gets plain values and callbacks (settings, targets, what to
do with a result, how to fail), so it runs without pytest.  Calling it runs a
scenario: scale, apply ``--mcpswarm-set``, let hooks adjust, spread the
clients over the stack's targets, measure, judge the SLA, record::

    def test_baseline(mcpswarm):
        result = mcpswarm("baseline")          # a built-in scenario, a profile name or a Scenario
        result.assert_sla("p99<50ms")          # an extra check on the steady state
        assert result["summary"]["throughput_rps"] > 100
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from types import FrameType
from typing import Any, NoReturn

import pytest

from pytest_mcpswarm.backends import Backend
from pytest_mcpswarm.capacity.observe import attribution_of, start_sampler
from pytest_mcpswarm.errors import MCPSwarmError, UsageError
from pytest_mcpswarm.load.controller import RunResult, run_workers
from pytest_mcpswarm.load.plan import RunPlan, plan_from_profile
from pytest_mcpswarm.options import Settings
from pytest_mcpswarm.report import document
from pytest_mcpswarm.scenarios import Scenario, get_scenario
from pytest_mcpswarm.session import SCENARIO_KEY, SESSION_KEY
from pytest_mcpswarm.sla import SlaOutcome, evaluate, parse_sla
from pytest_mcpswarm.stats.histogram import LatencyHistogram
from pytest_mcpswarm.stats.metrics import METRICS
from pytest_mcpswarm.stats.phases import PhaseStats, PhaseView, phase_stats
from pytest_mcpswarm.stats.recovery import recovery_time
from pytest_mcpswarm.stats.snapshot import StatsSnapshot

Fail = Callable[[str], NoReturn]
#: How a backend runs a plan itself (the swarm backend: on its client replicas):
#: ``execute(plan, targets, workers) -> RunResult``.
Execute = Callable[[RunPlan, tuple[str, ...], int], RunResult]


def _raise(message: str) -> NoReturn:
    raise AssertionError(message)


class ScenarioResult:
    """A scenario's report entry (``.data``, also readable as ``result[key]``) and its measurements."""

    def __init__(self, data: dict[str, Any], run: RunResult, view: PhaseView, fail: Fail = _raise) -> None:
        self.data = data
        self.run = run
        #: The statistics after the warm-up: what SLAs are judged on.
        self.view = view
        self._fail = fail

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def snapshot(self) -> StatsSnapshot:
        return self.run.snapshot

    def sla(self, expr: str) -> SlaOutcome:
        """Judge ``expr`` (the SLA language) on the steady state, without failing."""
        return evaluate(parse_sla(expr), self.view)

    def assert_sla(self, expr: str) -> SlaOutcome:
        """Fail the test unless every check of ``expr`` holds; the message lists them all."""
        outcome = self.sla(expr)
        if not outcome.passed:
            self._fail(f"{self.name}: {outcome.message}{generator_note(self.data)}")
        return outcome


# -- running ---------------------------------------------------------------------------


def generator_note(data: dict[str, Any]) -> str:
    """What to add to an SLA failure when the generator, not the server, was the limit."""
    if not data.get("generator_bound"):
        return ""
    reasons = "; ".join(data["generator"]["reasons"])
    return (
        f"\nNOTE: the load generator was saturated ({reasons}): these figures may show its limit, "
        "not the server's; add --mcpswarm-workers or lower the load"
    )


def merge_results(plan: RunPlan, results: list[RunResult]) -> RunResult:
    """One result of runs that shared the work (exact: every field is a sum)."""
    out = RunResult(plan, StatsSnapshot(), LatencyHistogram(), 0)
    for r in results:
        out.add(r)
    return out


async def run_spread(plan: RunPlan, targets: tuple[str, ...], workers: int) -> RunResult:
    """Run ``plan`` with its connections dealt round-robin over ``targets``, merged exactly.

    Each target gets its own set of generator processes; their schedules start
    within a few milliseconds of each other, so their 1 s windows line up.
    """
    connections = plan.my_connections()
    n = max(1, min(len(targets), len(connections)))
    share = max(1, workers // n)
    parts = [replace(plan, target=targets[k], connections=tuple(connections[k::n])) for k in range(n)]
    results = await asyncio.gather(*(run_workers(p, min(share, len(p.connections))) for p in parts))
    return merge_results(replace(results[0].plan, target=targets[0], connections=()), list(results))


def _phase_entry(name: str, start: float, stop: float | None, stats: PhaseStats) -> dict[str, Any]:
    err = stats.value("error_rate")
    return {
        "name": name,
        "start_s": start,
        "stop_s": stop,
        "latency_ms": document.latency_ms(stats.latency),
        "throughput_rps": stats.value("rps") or 0.0,
        "error_rate_pct": None if err is None else err * 100,
        "requests": {"ok": stats.ok, "errors": stats.errors, "timeouts": stats.timeouts,
                     "not_sent": stats.not_sent},
    }  # fmt: skip


def _pct(value: float | None) -> float | None:
    return None if value is None else value * 100


def analyse(scenario: Scenario, run: RunResult) -> tuple[PhaseView, list[dict[str, Any]], dict[str, Any]]:
    """The steady-state view, the per-phase figures and the scenario's headline figures."""
    series = run.snapshot.series
    view = PhaseView(series, scenario.warmup_s)
    bounds = scenario.phase_bounds()
    if not bounds and scenario.warmup_s > 0:
        bounds = [("warm-up", 0.0, scenario.warmup_s), ("steady", scenario.warmup_s, scenario.duration_s)]
    stats: dict[str, PhaseStats] = {}
    phases = []
    for i, (name, start, stop) in enumerate(bounds):
        last = i == len(bounds) - 1
        stats[name] = phase_stats(series, start, None if last else stop)
        phases.append(_phase_entry(name, start, stop, stats[name]))
    rows = series.rows()
    plan = run.plan
    warm, end = scenario.warmup_s, plan.duration_s
    offered = plan.ramp.scheduled_count(warm, end) / (end - warm) if end > warm else 0.0
    summary: dict[str, Any] = {
        "offered_rps": offered,
        "throughput_rps": view.overall("rps") or 0.0,
        "error_rate_pct": _pct(view.overall("error_rate")),
        "peak_connections": max((r["connections"] for r in rows), default=0),
        "connect_failures": run.connections.get("failed", 0),
    }
    if scenario.peak_phase:
        peak = stats[scenario.peak_phase]
        summary["p95_at_peak_ms"] = document.latency_ms(peak.latency)["p95"]
        summary["error_rate_at_peak_pct"] = _pct(peak.value("error_rate"))
    if scenario.stress_phase and scenario.reference_phase:
        stress, before = stats[scenario.stress_phase], stats[scenario.reference_phase]
        stress_start, stress_end = next((a, b) for name, a, b in bounds if name == scenario.stress_phase)
        reference_start = next(a for name, a, _ in bounds if name == scenario.reference_phase)
        in_stress = [r["rps"] for r in rows[stress.first : stress.stop]]
        summary["peak_throughput_rps"] = max(in_stress, default=0.0)
        p99_stress, p99_before = stress.value("p99"), before.value("p99")
        summary["degradation"] = p99_stress / p99_before if p99_stress and p99_before else None
        summary["error_rate_by_phase_pct"] = {name: _pct(s.value("error_rate")) for name, s in stats.items()}
        try:
            summary["recovery_s"] = recovery_time(
                rows,
                stress_start,
                stress_end,
                run_end_s=series.elapsed_s,
                # Connections open before t=0 (controller.START_DELAY_S), so second 0 is a fair baseline.
                skip_first_s=math.ceil(reference_start),
            ).recovery_s
        except ValueError:  # no whole second with answers before the stress: nothing to recover to
            summary["recovery_s"] = None
    return view, phases, summary


class ScenarioRunner:
    """``runner(scenario, **fields) -> ScenarioResult``; the ``mcpswarm`` fixture is one of these."""

    def __init__(
        self,
        settings: Settings,
        targets: tuple[str, ...],
        *,
        backend: str,
        record: Callable[[dict[str, Any]], None] = lambda d: None,
        unique_name: Callable[[str], str] = lambda n: n,
        adjust: Callable[[Scenario], Scenario | None] = lambda s: None,
        on_result: Callable[[dict[str, Any]], None] = lambda d: None,
        fail: Fail = _raise,
        marker_sla: str | None = None,
        nodeid: str = "",
        execute: Execute | None = None,
        server_pids: tuple[int, ...] = (),
    ) -> None:
        self.settings = settings
        self.targets = targets
        self.backend = backend
        self.record = record
        self.unique_name = unique_name
        self.adjust = adjust
        self.on_result = on_result
        self.fail = fail
        self.marker_sla = marker_sla
        self.nodeid = nodeid
        self.execute = execute
        #: Local servers to sample for bottleneck attribution (empty: not sampled).
        self.server_pids = server_pids
        self.results: list[ScenarioResult] = []

    def prepare(self, scenario: Scenario | str, fields: Mapping[str, object]) -> Scenario:
        """The scenario exactly as it will run: code fields, scales, --mcpswarm-set, hooks."""
        s = self.settings
        base = get_scenario(scenario) if isinstance(scenario, str) else scenario
        if fields:
            base = base.with_overrides(fields)
        ready = base.scaled(s.time_scale, s.load_scale)
        ready = ready.with_overrides(s.overrides_for(ready.name), label=f"--mcpswarm-set {ready.name}")
        return self.adjust(ready) or ready

    def sla_for(self, scenario: Scenario, offered_rps: float) -> tuple[str, str]:
        """``(expr, source)``: --mcpswarm-sla, else the marker, else the scenario's default."""
        if scenario.name in self.settings.slas:
            return self.settings.slas[scenario.name], "option"
        if self.marker_sla is not None:
            return self.marker_sla, "marker"
        return scenario.effective_sla(offered_rps), "default"

    def __call__(self, scenario: Scenario | str, /, **fields: object) -> ScenarioResult:
        try:
            return self._run(scenario, fields)
        except MCPSwarmError as exc:
            self.fail(f"mcpswarm: {exc}")

    def _run(self, scenario: Scenario | str, fields: Mapping[str, object]) -> ScenarioResult:
        sc = self.prepare(scenario, fields)
        plan = plan_from_profile(
            sc.run_profile(), target=self.targets[0], timeout_s=sc.timeout_s, warmup_s=sc.warmup_s
        )
        workers = max(1, min(self.settings.workers, plan.ramp.max_connections))
        attribution = None
        if self.execute is not None:
            run = self.execute(plan, self.targets, workers)
        else:
            # Server and generator resources side by side, for the bottleneck verdict.
            sampler = start_sampler(server_pids=self.server_pids)
            with sampler:
                run = asyncio.run(run_spread(plan, self.targets, workers))
            attribution = attribution_of(run, sampler)
        view, phases, summary = analyse(sc, run)
        expr, source = self.sla_for(sc, summary["offered_rps"])
        outcome = evaluate(parse_sla(expr), view) if expr.strip() else None
        params = sc.params() | {
            "time_scale": self.settings.time_scale,
            "load_scale": self.settings.load_scale,
            "targets": len(self.targets),
        }
        name = self.unique_name(sc.name)
        data = document.scenario(name, run, profile=sc.profile.name, backend=self.backend, params=params,
                                 sla=outcome)  # fmt: skip
        data["target"] = ", ".join(self.targets)
        if data["sla"] is not None:
            data["sla"] = {"expr": expr, "source": source, **data["sla"]}
        if sc.warmup_s > 0:
            data["whole_run"] = {"latency_ms": data["latency_ms"], "throughput_rps": data["throughput_rps"]}
            data["latency_ms"] = document.latency_ms(view.stats.latency)
            data["throughput_rps"] = summary["throughput_rps"]
            data["histogram"] = view.stats.latency.encode()
        data["warmup_s"] = sc.warmup_s
        data["description"] = sc.description
        data["nodeid"] = self.nodeid
        data["phases"] = phases
        data["summary"] = summary
        data["metrics"] = {m: view.overall(m) for m in METRICS}
        if attribution is not None:
            data["attribution"] = attribution
        self.on_result(data)
        self.record(data)
        result = ScenarioResult(data, run, view, self.fail)
        self.results.append(result)
        if outcome is not None and not outcome.passed:
            self.fail(f"{name}: {outcome.message}{generator_note(data)}")
        return result


# -- pytest fixtures ---------------------------------------------------------------------


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the stack is up, SIGTERM interrupts pytest like Ctrl-C, so teardown still runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def mcpswarm_stack(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The chosen backend, up for the whole session: ``.targets``, ``.metrics_endpoints``, ``.describe()``."""
    session = request.config.stash[SESSION_KEY]
    backend = session.backend
    with sigterm_as_interrupt():
        try:
            backend.start()
        except MCPSwarmError as exc:
            pytest.fail(f"mcpswarm: the {backend.name} stack did not come up: {exc}", pytrace=False)
        session.stack = backend.describe()
        try:
            yield backend
        finally:
            if session.settings.keep_stack:
                session.kept_stack = backend.describe() | {"pids": list(getattr(backend, "pids", ()))}
                backend.detach()
            else:
                backend.stop()


def _marker_sla(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("mcpswarm_sla")
    if marker is None:
        return None
    if len(marker.args) != 1 or not isinstance(marker.args[0], str) or marker.kwargs:
        raise UsageError(
            f"{item.nodeid}: @pytest.mark.mcpswarm_sla takes one SLA string",
            fix="write @pytest.mark.mcpswarm_sla('p99<200ms, error_rate<0.1%')",
        )
    parse_sla(marker.args[0])
    return marker.args[0]


def _fail(message: str) -> NoReturn:
    pytest.fail(message, pytrace=False)


@pytest.fixture
def mcpswarm(request: pytest.FixtureRequest, mcpswarm_stack: Backend) -> ScenarioRunner:
    """Run a scenario against the stack: ``result = mcpswarm("baseline")``; see ``ScenarioRunner``."""
    config = request.config
    session = config.stash[SESSION_KEY]
    settings = session.settings
    try:
        marker_sla = _marker_sla(request.node)
    except MCPSwarmError as exc:
        _fail(f"mcpswarm: {exc}")
    hook = config.hook
    mine = request.node.stash.setdefault(SCENARIO_KEY, [])

    def record(data: dict[str, Any]) -> None:
        mine.append(data)
        session.record(data)

    def adjust(scenario: Scenario) -> Scenario | None:
        adjusted: Scenario | None = hook.pytest_mcpswarm_adjust_scenario(scenario=scenario, settings=settings)
        return adjusted

    annotate: Callable[[dict[str, Any]], None] = getattr(mcpswarm_stack, "annotate", lambda data: None)

    def on_result(data: dict[str, Any]) -> None:
        annotate(data)  # backend facts first (swarm: replicas that reported, Prometheus check)
        hook.pytest_mcpswarm_scenario_result(config=config, scenario=data)

    return ScenarioRunner(
        settings,
        mcpswarm_stack.targets,
        backend=mcpswarm_stack.name,
        record=record,
        unique_name=session.unique_name,
        adjust=adjust,
        on_result=on_result,
        fail=_fail,
        marker_sla=marker_sla,
        nodeid=request.node.nodeid,
        execute=getattr(mcpswarm_stack, "execute", None),
        server_pids=tuple(getattr(mcpswarm_stack, "pids", ())),
    )
