"""The ceiling search state machine, driven by a simulated server (no I/O)."""

from __future__ import annotations

import pytest

from pytest_mcpswarm.capacity.search import CeilingSearch, GeneratorRule, StepResult
from pytest_mcpswarm.errors import UsageError


def server(capacity: float, *, limit_p99_ms: float = 100.0):  # type: ignore[no-untyped-def]
    """A step as a server of ``capacity`` req/s would produce it: flat below, queueing above."""

    def step(rate: float) -> StepResult:
        if rate <= capacity:
            return StepResult(rate, rate, passed=True, p50_ms=10.0, p99_ms=15.0, schedule_lag_p99_ms=1.0)
        return StepResult(
            rate, capacity, passed=False, p50_ms=500.0, p99_ms=limit_p99_ms * 10, schedule_lag_p99_ms=1.0
        )

    return step


def drive(search: CeilingSearch, step) -> CeilingSearch:  # type: ignore[no-untyped-def]
    while (rate := search.next_rate()) is not None:
        search.record(step(rate))
    return search


@pytest.mark.parametrize("capacity", [37.0, 400.0, 1234.0, 99_000.0])
def test_search_converges_within_precision_of_capacity(capacity: float) -> None:
    search = drive(CeilingSearch(10.0, precision=0.05, max_steps=30), server(capacity))
    assert search.ceiling_rps is not None
    assert capacity * 0.95 <= search.ceiling_rps <= capacity
    assert search.stopped_because is not None and search.stopped_because.startswith("converged")
    phases = [s.phase for s in search.steps]
    assert phases[0] == "step-up" and "bisect" in phases
    assert phases == sorted(phases, key=lambda p: p != "step-up")  # step-up first, then only bisect


def test_the_throughput_of_an_overloaded_step_is_tried_first() -> None:
    search = CeilingSearch(100.0, precision=0.05)
    rates = []
    step = server(300.0)
    while (rate := search.next_rate()) is not None:
        rates.append(rate)
        search.record(step(rate))
    # 100, 200, 400 (fails, 300 answered) -> 300 is tried next and passes -> converged.
    assert rates == [100.0, 200.0, 400.0, 300.0]
    assert search.ceiling_rps == 300.0
    assert (
        search.stopped_because is not None
        and "most an overloaded step got answered" in search.stopped_because
    )
    assert search.last_pass is not None and search.first_fail is not None
    assert search.first_fail.offered_rps == 400.0


def test_first_step_failing_stops_with_advice() -> None:
    search = drive(CeilingSearch(1000.0), server(10.0))
    assert search.ceiling_rps is None
    assert search.stopped_because is not None and "lower the start rate" in search.stopped_because
    assert len(search.steps) == 1


def test_errors_stop_the_search_and_name_their_types() -> None:
    def step(rate: float) -> StepResult:
        if rate < 300:
            return StepResult(rate, rate, passed=True, p50_ms=1.0, p99_ms=2.0)
        return StepResult(rate, rate, passed=False, p50_ms=1.0, p99_ms=2.0, error_rate=0.2,
                          errors_by_type={"jsonrpc:-32000": 40})  # fmt: skip

    search = drive(CeilingSearch(100.0), step)
    assert [s.offered_rps for s in search.steps] == [100.0, 200.0, 400.0]
    assert search.ceiling_rps == 200.0
    assert search.stopped_because is not None
    assert (
        search.stopped_because.startswith("errors at 400 req/s")
        and "jsonrpc:-32000 x40" in search.stopped_because
    )


def test_failed_connections_stop_the_search() -> None:
    search = CeilingSearch(100.0)
    search.record(StepResult(100.0, 0.0, passed=False, connect_failures=8))
    assert (
        search.done
        and search.stopped_because is not None
        and "8 failed connections" in search.stopped_because
    )


def test_a_generator_bound_failure_stops_and_is_not_blamed_on_the_server() -> None:
    def step(rate: float) -> StepResult:
        if rate < 400:
            return StepResult(rate, rate, passed=True, p50_ms=1.0, p99_ms=2.0, schedule_lag_p99_ms=0.5)
        # The generator sends late: the tail is its lag; the server is as fast as ever.
        return StepResult(rate, rate * 0.6, passed=False, p50_ms=1.2, p99_ms=60.0, schedule_lag_p99_ms=58.0)

    search = drive(CeilingSearch(100.0), step)
    assert search.ceiling_rps == 200.0
    assert search.first_fail is None  # says nothing about the server
    last = search.steps[-1]
    assert last.generator_bound and not last.passed
    assert search.stopped_because is not None and search.stopped_because.startswith("generator-bound at 400")
    assert search.to_dict()["generator_bound"] is True


def test_a_passing_step_stands_even_when_marked_generator_bound() -> None:
    search = CeilingSearch(100.0, max_rps=100.0)
    step = search.record(
        StepResult(100.0, 100.0, passed=True, p50_ms=10.0, p99_ms=20.0, schedule_lag_p99_ms=15.0)
    )
    assert step.generator_bound
    assert search.ceiling_rps == 100.0
    assert search.to_dict()["generator_bound"] is False
    assert search.stopped_because is not None and "maximum rate" in search.stopped_because


def test_max_rate_caps_the_step_up() -> None:
    search = drive(CeilingSearch(100.0, max_rps=300.0), server(1e9))
    assert [s.offered_rps for s in search.steps] == [100.0, 200.0, 300.0]
    assert search.ceiling_rps == 300.0


def test_step_budget() -> None:
    search = drive(CeilingSearch(1.0, max_steps=3), server(1e9))
    assert len(search.steps) == 3
    assert search.stopped_because == "step budget of 3 steps used up"
    with pytest.raises(RuntimeError):
        search.record(StepResult(1.0, 1.0, passed=True))


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [({"factor": 1.0}, "factor"), ({"precision": 0.0}, "precision"), ({"max_rps": 1.0}, "max rate"),
     ({"max_steps": 0}, "max steps"), ({"max_error_rate": 1.0}, "error rate")],
)  # fmt: skip
def test_bad_settings_are_usage_errors(kwargs: dict[str, float], word: str) -> None:
    with pytest.raises(UsageError, match=word):
        CeilingSearch(10.0, **kwargs)  # type: ignore[arg-type]


class TestGeneratorRule:
    rule = GeneratorRule(lag_bound_ms=5.0)

    def test_comfortable_step_is_not_bound(self) -> None:
        s = StepResult(100, 100, True, p50_ms=10, p99_ms=20, schedule_lag_p99_ms=1.0, generator_cpu=0.2)
        assert self.rule.judge(s, 10.0) == ()

    def test_lag_that_is_the_tail_is_the_generators(self) -> None:
        s = StepResult(100, 100, False, p50_ms=10, p99_ms=30, schedule_lag_p99_ms=20.0)
        (reason,) = self.rule.judge(s, 10.0)
        assert reason.startswith("schedule lag p99 20.0 ms > 5 ms")

    def test_lag_small_next_to_server_queueing_is_not(self) -> None:
        s = StepResult(500, 390, False, p50_ms=800, p99_ms=1500, schedule_lag_p99_ms=40.0)
        assert self.rule.judge(s, 10.0) == ()

    def test_late_drops_cpu_and_silent_shortfall(self) -> None:
        s = StepResult(1000, 500, False, p50_ms=11, p99_ms=12, not_sent_late=7, generator_cpu=0.97)
        reasons = self.rule.judge(s, 10.0)
        assert len(reasons) == 3
        late, cpu, shortfall = reasons
        assert "7 requests not sent" in late
        assert "97%" in cpu
        assert "achieved 500 of 1000" in shortfall and "no queueing" in shortfall
