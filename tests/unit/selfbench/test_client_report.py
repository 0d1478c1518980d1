"""``selfbench client``'s (d) reference line, from the runs it was measured in."""

from __future__ import annotations

import pytest

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.selfbench import client as c
from pytest_mcpswarm.selfbench import client_report


def _run(key: str, requests: int, cpu_s: float) -> c.Run:
    return c.Run(key, requests, 4.0, cpu_s, {})


def test_the_raw_split_is_the_per_round_ratio_of_two_processes_to_one() -> None:
    out = c.Outcome(
        runs={
            "split-raw-1": [_run("split-raw-1", 320_000, 1.0), _run("split-raw-1", 320_000, 0.8)],
            "split-raw-2": [_run("split-raw-2", 320_000, 1.1), _run("split-raw-2", 160_000, 0.5)],
        }
    )
    # Round 1: 1.1 / 1.0; round 2: (0.5 / 160K) / (0.8 / 320K) = 1.25.
    split = client_report.raw_split(out)
    assert split is not None
    assert [round(x, 3) for x in split] == [1.175, 1.1, 1.25]
    line = client_report.reference(out)
    assert line is not None and "1.175x (1.100x..1.250x)" in line


def test_without_both_split_cases_there_is_no_reference() -> None:
    only_one = c.Outcome(runs={"split-raw-1": [_run("split-raw-1", 320_000, 1.0)]})
    assert client_report.raw_split(only_one) is None
    assert client_report.reference(only_one) is None
    assert client_report.reference(c.Outcome()) is None


def test_only_picks_the_goals_groups_and_refuses_unknown_ones() -> None:
    assert c.Settings().only == ("a", "b", "c", "d")
    assert c.Settings(only=("d",)).only == ("d",)
    with pytest.raises(UsageError, match=r"goals from a, b, c, d, comma-separated \(got x\)"):
        c.Settings(only=("a", "x"))
    with pytest.raises(UsageError, match="got none"):
        c.Settings(only=())


def test_a_goal_not_measured_is_left_out_not_reported_as_failed() -> None:
    runs = {"ws-engine": [_run("ws-engine", 400_000, 0.5)], "ws-raw": [_run("ws-raw", 400_000, 0.4)]}
    out = c.Outcome(runs=runs)
    rows = {row["goal"]: row for row in client_report.goals(out)}
    assert rows["(a) WS engine CPU/request vs raw loop"]["figure"] == pytest.approx((1.25, 1.25, 1.25))
    assert rows["(d) CPU/request, 2 workers vs 1"]["figure"] is None
    runs["ws-engine"] = [_run("ws-engine", 400_000, 0.45)]  # 1.125x, 889K/s per core
    assert client_report.goals_met(c.Outcome(runs=runs))  # (b)-(d) were not measured: not failed
    runs["ws-engine"] = [_run("ws-engine", 400_000, 0.6)]  # 1.5x
    assert not client_report.goals_met(c.Outcome(runs=runs))
