"""``selfbench client``'s (d) floor: the bound a bare 1 ms waker sets, from the runs it was measured in."""

from __future__ import annotations

from pytest_mcpswarm.selfbench import client as c
from pytest_mcpswarm.selfbench import client_report


def _wake_run(worker_cpu_s: float, waker_cpu_s: float) -> c.Run:
    return c.Run("floor-wake", 320_000, 4.0, worker_cpu_s, {"waker": {"cpu_s": waker_cpu_s, "seconds": 3.5}})


def test_the_floor_is_one_plus_the_waker_share_of_the_worker_per_run() -> None:
    out = c.Outcome(
        runs={"floor-wake": [_wake_run(1.0, 0.0525), _wake_run(1.2, 0.042), _wake_run(0.8, 0.07)]}
    )
    # Per run: worker 250/300/200 ms/s, waker 15/12/20 ms/s.
    bound = client_report.wake_bound(out)
    assert bound is not None
    median, low, high = bound
    assert (round(median, 3), round(low, 3), round(high, 3)) == (1.06, 1.04, 1.1)
    (line,) = client_report.floor(out)
    assert "15.0 ms/s beside 1 worker" in line
    assert "out of reach on this machine" in line  # the median bound is above the 1.05x goal


def test_a_floor_under_the_goal_does_not_call_it_out_of_reach() -> None:
    out = c.Outcome(runs={"floor-wake": [_wake_run(1.0, 0.0175)]})  # 5 ms/s beside 250 ms/s: 1.02x
    (line,) = client_report.floor(out)
    assert "1.020x" in line
    assert "out of reach" not in line


def test_no_floor_runs_no_floor_lines() -> None:
    assert client_report.floor(c.Outcome()) == []
    assert client_report.wake_bound(c.Outcome()) is None
