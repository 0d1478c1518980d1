"""``selfbench client``'s (d) reference lines, from the runs they were measured in."""

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
    bound = client_report.raw_split(out)
    assert bound is not None
    assert [round(x, 3) for x in bound] == [1.175, 1.1, 1.25]
    (line,) = client_report.floor(out)
    assert "1.175x (1.100x..1.250x)" in line


def test_the_floor_line_needs_all_three_cases() -> None:
    runs = {k: [_run(k, 1000, 0.25)] for k in ("floor-engine", "floor-raw")}
    assert client_report.floor(c.Outcome(runs=dict(runs))) == []
    runs["workers-1"] = [_run("workers-1", 320_000, 1.0)]
    (line,) = client_report.floor(c.Outcome(runs=runs))
    assert "62 ms/s (engine)" in line and "1.25x (engine)" in line


def test_no_reference_runs_no_lines() -> None:
    assert client_report.floor(c.Outcome()) == []
    assert client_report.raw_split(c.Outcome()) is None
