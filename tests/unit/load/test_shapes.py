"""Load shapes: exact schedules, connection spans, closed model and churn."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.load.shapes import Churn, ClosedModel, ConnectionSpan, Ramp, Stage

stages_st = st.lists(
    st.builds(
        Stage,
        st.sampled_from([0.0, 0.5, 1.0, 2.5, 3.0]),
        st.integers(0, 6),
        st.sampled_from([0.0, 1.0, 7.0, 20.0, 33.3]),
    ),
    min_size=1,
    max_size=4,
).filter(lambda stages: sum(s.duration_s for s in stages) > 0)
ramps = st.builds(Ramp, stages_st.map(tuple), st.integers(0, 4), st.sampled_from([None, 0.0, 5.0]))


def test_constant_open_model_sends_at_k_plus_phase_over_rate() -> None:
    ramp = Ramp.constant(4, 10.0, 3.0)
    assert ramp.duration_s == 3.0 and ramp.max_connections == 4
    assert ramp.scheduled_count() == 4 * 10 * 3
    for c in range(4):
        times = ramp.send_times(c)
        expected = (np.arange(30) + Ramp.phase(c)) / 10.0
        assert np.allclose(times, expected, rtol=0, atol=1e-12)
        assert ramp.send_count(c) == 30
    assert ramp.send_times(0)[0] == 0.0  # connection 0 has phase 0


def test_phases_are_distinct_and_spread() -> None:
    phases = [Ramp.phase(i) for i in range(50)]
    assert all(0 <= p < 1 for p in phases) and len(set(phases)) == 50
    # Low discrepancy: every tenth of the period holds 4 to 6 of 50 phases.
    counts = np.histogram(phases, bins=10, range=(0, 1))[0]
    assert counts.min() >= 4 and counts.max() <= 6


def test_window_bounds_are_half_open() -> None:
    ramp = Ramp.constant(1, 2.0, 5.0)  # connection 0 sends at 0, 0.5, 1.0, ...
    assert list(ramp.send_times(0, 1.0, 2.0)) == [1.0, 1.5]
    assert ramp.send_count(0, 1.0, 2.0) == 2
    assert ramp.send_count(0, 2.0, 2.0) == 0
    assert ramp.send_count(0, -5.0, 100.0) == 10
    assert ramp.send_count(5) == 0  # no such connection: never runs
    assert len(ramp.send_times(0, 4.75, 4.9)) == 0


@settings(max_examples=80, deadline=None)
@given(ramps, st.lists(st.floats(0, 12, allow_nan=False), max_size=6))
def test_counts_over_a_partition_add_up_and_match_send_times(ramp: Ramp, cuts: list[float]) -> None:
    bounds = [0.0, *sorted(cuts), math.inf]
    total = ramp.scheduled_count()
    assert sum(ramp.scheduled_count(a, b) for a, b in itertools.pairwise(bounds)) == total
    for c in range(ramp.max_connections):
        pieces = [ramp.send_times(c, a, b) for a, b in itertools.pairwise(bounds)]
        for (a, b), times in zip(itertools.pairwise(bounds), pieces, strict=True):
            assert len(times) == ramp.send_count(c, a, b)
            assert np.all(times >= a) and np.all(times < b)
        joined = np.concatenate(pieces)
        # Counts are exact; a time may be clamped into its span by float rounding.
        assert np.allclose(joined, ramp.send_times(c), rtol=0, atol=1e-9)
        assert np.all(np.diff(joined) >= 0)


@settings(max_examples=80, deadline=None)
@given(ramps)
def test_sends_sit_on_the_integral_grid_inside_running_spans(ramp: Ramp) -> None:
    for c in range(ramp.max_connections):
        times = ramp.send_times(c)
        spans = [s for s in ramp.connection_spans() if s.connection == c]
        for t in times:
            assert any(s.start_s <= t < s.stop_s for s in spans)
            k = ramp.sends_before(float(t)) - Ramp.phase(c)
            assert abs(k - round(k)) < 1e-6
        # Per span, the count is the integral of the rate, give or take the phase.
        for s in spans:
            expected = ramp.sends_before(s.stop_s) - ramp.sends_before(s.start_s)
            assert abs(ramp.send_count(c, s.start_s, s.stop_s) - expected) <= 1


@settings(max_examples=80, deadline=None)
@given(ramps, st.floats(0, 1, exclude_max=True), st.floats(0, 1), st.integers(1, 300))
def test_the_steady_rate_shortcut_agrees_with_the_quadratic_bit_for_bit(
    ramp: Ramp, at: float, width: float, n: int
) -> None:
    end = ramp.sends_before(ramp.duration_s)
    if end == 0:
        return
    lo = at * end
    y = np.sort(lo + (end - lo) * width * np.linspace(0, 1, n, endpoint=False))
    steady = ramp._steady_time_of(y)
    j = int(np.searchsorted(np.asarray(ramp._lam), y[0], side="right")) - 1
    # It answers exactly when y lies inside one segment whose rate does not change.
    one_steady_segment = ramp._r[j] > 0 and ramp._r[j] == ramp._r[j + 1] and y[-1] < ramp._lam[j + 1]
    assert (steady is not None) == one_steady_segment
    if steady is not None:
        assert np.array_equal(steady, ramp._quadratic_time_of(y))


def test_send_times_of_a_constant_rate_take_the_steady_shortcut() -> None:
    ramp = Ramp.constant(3, 8000.0, 6.0)
    y = np.arange(0, 4000, dtype=np.float64) + Ramp.phase(2)
    steady = ramp._steady_time_of(y)
    assert steady is not None and np.array_equal(steady, ramp._quadratic_time_of(y))


def test_linear_rate_ramp_integrates_exactly() -> None:
    # Rate 0 -> 100 msg/s over 10 s: Λ(t) = 5 t², so send k is at sqrt(k / 5).
    ramp = Ramp((Stage(10.0, 1, 100.0),), start_connections=1, start_rate=0.0)
    assert ramp.sends_before(10.0) == 500.0
    assert ramp.scheduled_count() == 500
    assert np.allclose(ramp.send_times(0), np.sqrt(np.arange(500) / 5.0), atol=1e-9)
    assert ramp.rate_at(5.0) == 50.0
    assert ramp.sends_before(-1) == 0.0 and ramp.sends_before(11.0) == 500.0


def test_falling_rate_integrates_exactly() -> None:
    ramp = Ramp((Stage(4.0, 1, 0.0),), start_connections=1, start_rate=10.0)
    assert ramp.sends_before(4.0) == 20.0
    times = ramp.send_times(0)
    assert len(times) == 20
    assert np.allclose([ramp.sends_before(float(t)) for t in times], np.arange(20), atol=1e-9)


def test_rate_and_targets_at_times() -> None:
    ramp = Ramp((Stage(10, 10, 5.0), Stage(0, 4, 2.0), Stage(10, 0, 1.0)))
    assert ramp.duration_s == 20.0 and ramp.max_connections == 10
    assert ramp.rate_at(3.0) == 5.0  # start_rate defaults to the first stage's
    assert ramp.rate_at(10.0) == 2.0  # a zero-length stage is a step; right-continuous
    assert ramp.rate_at(15.0) == 1.5
    assert ramp.rate_at(20.0) == 0.0 and ramp.rate_at(-1) == 0.0
    assert ramp.target_connections_at(2.5) == 2.5
    assert ramp.target_connections_at(10.0) == 4.0
    assert ramp.target_connections_at(25.0) == 0.0


def test_connection_spans_of_a_ramp_up_step_and_ramp_down() -> None:
    ramp = Ramp((Stage(10, 10, 5.0), Stage(0, 4, 5.0), Stage(10, 0, 5.0)))
    spans = ramp.connection_spans()
    # Up: connection i starts when the target reaches i + 1; the 10th never runs
    # because the target touches 10 only at the instant it steps to 4.
    assert [s.start_s for s in spans] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    stops = {s.connection: s.stop_s for s in spans}
    assert stops == {0: 17.5, 1: 15.0, 2: 12.5, 3: 10.0, 4: 10.0, 5: 10.0, 6: 10.0, 7: 10.0, 8: 10.0}
    assert spans[0] == ConnectionSpan(0, 1.0, 17.5)


def test_spans_merge_across_stage_boundaries() -> None:
    ramp = Ramp((Stage(5, 2, 1.0), Stage(5, 2, 3.0), Stage(5, 3, 1.0)), start_connections=2)
    assert ramp.connection_spans() == [
        ConnectionSpan(0, 0.0, 15.0),
        ConnectionSpan(1, 0.0, 15.0),
    ]  # 3 is reached only at the very end


def test_a_connection_can_run_twice() -> None:
    ramp = Ramp((Stage(2, 1, 1.0), Stage(0, 2, 1.0), Stage(2, 2, 1.0), Stage(0, 1, 1.0), Stage(2, 2, 1.0)),
                start_connections=1)  # fmt: skip
    spans = [s for s in ramp.connection_spans() if s.connection == 1]
    assert [(s.start_s, s.stop_s) for s in spans] == [(2.0, 4.0)]
    up_down_up = Ramp((Stage(1, 2, 1.0), Stage(1, 0, 1.0), Stage(1, 2, 1.0)))
    assert [(s.start_s, s.stop_s) for s in up_down_up.connection_spans() if s.connection == 0] == [
        (0.5, 1.5),
        (2.5, 3.0),
    ]


@settings(max_examples=80, deadline=None)
@given(ramps, st.lists(st.floats(0, 12, allow_nan=False), min_size=1, max_size=10))
def test_connections_at_is_the_floor_of_the_target(ramp: Ramp, times: list[float]) -> None:
    for t in times:
        target = ramp.target_connections_at(t)
        falling = ramp.target_connections_at(t + 1e-7) < target
        if falling and abs(target - round(target)) < 1e-6:
            continue  # at a falling crossing the count is one lower (documented)
        assert ramp.connections_at(t) == math.floor(target + 1e-9)


def test_scheduled_count_for_a_ramp_is_exact_and_matches_the_times() -> None:
    ramp = Ramp((Stage(3.0, 5, 40.0), Stage(4.0, 5, 40.0), Stage(3.0, 0, 10.0)))
    total = ramp.scheduled_count()
    assert total == sum(len(ramp.send_times(c)) for c in range(ramp.max_connections))
    rng = random.Random(3)
    cuts = sorted(rng.uniform(0, 10) for _ in range(20))
    bounds = [0.0, *cuts, 10.0]
    assert sum(ramp.scheduled_count(a, b) for a, b in itertools.pairwise(bounds)) == total


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Ramp(()), "at least one stage"),
        (lambda: Ramp((Stage(0, 1, 1.0),)), "longer than 0 s"),
        (lambda: Stage(-1, 1, 1.0), "stage duration must be a non-negative"),
        (lambda: Stage(math.inf, 1, 1.0), "stage duration"),
        (lambda: Stage(1, -1, 1.0), "stage connections must be a whole number"),
        (lambda: Stage(1, 1.5, 1.0), "stage connections"),  # type: ignore[arg-type]
        (lambda: Stage(1, True, 1.0), "stage connections"),
        (lambda: Stage(1, 1, -2.0), "stage rate"),
        (lambda: Stage(1, 1, "fast"), "stage rate"),  # type: ignore[arg-type]
        (lambda: Ramp((Stage(1, 1, 1.0),), start_connections=-1), "start connections"),
        (lambda: Ramp((Stage(1, 1, 1.0),), start_rate=math.nan), "start rate"),
        (lambda: ClosedModel.constant(1, 1.0, think_time_s=-1), "think time"),
        (lambda: Churn(0), "churn calls per connection"),
        (lambda: Churn(True), "churn calls per connection"),
    ],
)
def test_invalid_shapes_raise_usage_errors(make: object, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        make()  # type: ignore[operator]


def test_closed_model() -> None:
    model = ClosedModel.constant(3, 10.0, think_time_s=0.5)
    assert model.ramp.connection_spans() == [ConnectionSpan(i, 0.0, 10.0) for i in range(3)]
    assert model.ramp.scheduled_count() == 0  # rates are ignored: nothing is pre-scheduled
    assert model.next_send(2.0, 10.0) == 2.5
    assert model.next_send(9.5, 10.0) is None
    assert ClosedModel.constant(1, 1.0).next_send(0.25, 1.0) == 0.25


def test_churn_life_cycle() -> None:
    churn = Churn(3)
    assert [churn.session_of(k) for k in range(7)] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0)]
    assert [churn.opens_before(k) for k in range(4)] == [True, False, False, True]
    assert [churn.closes_after(k) for k in range(4)] == [False, False, True, False]
    assert [churn.sessions(n) for n in (0, 1, 3, 4, 7)] == [0, 1, 1, 2, 3]
    assert Churn(1).opens_before(5) and Churn(1).closes_after(5)
    with pytest.raises(ValueError, match=">= 0"):
        churn.session_of(-1)
