"""``selfbench client``'s (d) reference line, from the runs it was measured in."""

from __future__ import annotations

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
