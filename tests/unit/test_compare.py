"""compare: the tolerance language, metric values, deltas, the gate, and run storage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_mcpswarm import compare
from pytest_mcpswarm.errors import UsageError


def scenario(name: str = "baseline", *, p50: float = 1.0, p99: float = 10.0, rps: float = 1000.0,
             errors: int = 0, ok: int = 10_000) -> dict[str, Any]:  # fmt: skip
    return {
        "name": name,
        "params": {"clients": 5},
        "latency_ms": {"p50": p50, "p90": p99, "p95": p99, "p99": p99, "p999": p99, "max": p99, "mean": p50},
        "requests": {"scheduled": ok + errors, "sent": ok + errors, "ok": ok, "errors": errors,
                     "timeouts": 0, "not_sent": 0},
        "throughput_rps": rps,
    }  # fmt: skip


def test_parse_the_issue_example() -> None:
    tols = compare.parse_compare_fail("p99:+10%, p50:+2ms, rps:-5%, error_rate:+0.1pp")
    assert [(t.metric, t.amount, t.relative) for t in tols] == [
        ("p99", pytest.approx(0.10), True),
        ("p50", 2000.0, False),
        ("rps", pytest.approx(0.05), True),
        ("error_rate", pytest.approx(0.001), False),
    ]


def test_the_sign_may_be_left_out_but_not_reversed() -> None:
    assert compare.parse_compare_fail("p99:10%")[0].text == "p99:+10%"
    with pytest.raises(UsageError, match=r"rps regresses when it drops; write rps:-5%"):
        compare.parse_compare_fail("rps:+5%")
    with pytest.raises(UsageError, match=r"p99 regresses when it rises"):
        compare.parse_compare_fail("p99:-5ms")


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("", "empty"),
        ("p99:+10%,", "empty item"),
        ("p98:+10%", "unknown metric"),
        ("p99 10%", "METRIC:"),
        ("p99:+10", "latency unit"),
        ("error_rate:+0.1", "pp .percentage points."),
        ("rps:-5ms", "bare number"),
    ],
)
def test_bad_expressions_say_what_is_accepted(expr: str, words: str) -> None:
    with pytest.raises(UsageError, match=words) as info:
        compare.parse_compare_fail(expr)
    assert "p99:+10%" in str(info.value)


def test_limits_in_the_bad_direction() -> None:
    p99, p50, rps, err = compare.parse_compare_fail("p99:+10%, p50:+2ms, rps:-5%, error_rate:+0.1pp")
    assert p99.limit(10_000) == pytest.approx(11_000)
    assert not p99.regressed(10_000, 11_000) and p99.regressed(10_000, 11_001)
    assert p50.limit(1000) == 3000 and p50.regressed(1000, 3001)
    assert rps.limit(1000) == pytest.approx(950)
    assert rps.regressed(1000, 949) and not rps.regressed(1000, 951) and not rps.regressed(1000, 5000)
    assert err.regressed(0.0, 0.0011) and not err.regressed(0.0, 0.0009)


def test_metric_values_from_schema_keys_and_from_metrics() -> None:
    values = compare.metric_values(scenario(p99=12.5, errors=10, ok=990, rps=99.0))
    assert values["p99"] == 12_500 and values["error_rate"] == pytest.approx(0.01) and values["rps"] == 99
    assert compare.metric_values({"metrics": {"p99": 7, "rps": None}}) == {"p99": 7.0, "rps": None}


def test_compare_scenario_flags_only_regressions_beyond_tolerance() -> None:
    tols = compare.parse_compare_fail("p99:+10%, rps:-5%")
    same = compare.compare_scenario("baseline", scenario(p99=10.5, rps=960), scenario(), tols)
    assert same["regressions"] == [] and not same["params_differ"]
    assert same["metrics"]["p99"]["delta"] == pytest.approx(0.5)
    assert same["metrics"]["p99"]["delta_pct"] == pytest.approx(5.0)
    worse = compare.compare_scenario("baseline", scenario(p99=12.0, rps=900), scenario(), tols)
    assert [m for m, e in worse["metrics"].items() if e["regressed"]] == ["p99", "rps"]
    assert len(worse["regressions"]) == 2 and "p99 10ms -> 12ms (+20.0%)" in worse["regressions"][0]
    missing = compare.compare_scenario("new", scenario("new"), None, tols)
    assert missing["missing"] and missing["regressions"] == []


def test_a_metric_that_became_undefined_is_a_regression() -> None:
    gone = scenario()
    gone["latency_ms"] = dict.fromkeys(gone["latency_ms"])
    out = compare.compare_scenario("baseline", gone, scenario(), compare.parse_compare_fail("p99:+10%"))
    assert out["metrics"]["p99"]["regressed"]


def test_save_numbers_runs_and_find_baseline_resolves_names(tmp_path: Path) -> None:
    doc = {"schema": "mcpswarm/1", "scenarios": [scenario()]}
    first = compare.save(tmp_path, "main", doc)
    second = compare.save(tmp_path, "pr", doc)
    third = compare.save(tmp_path, "main", doc)
    assert [p.name for p in (first, second, third)] == ["0001_main.json", "0002_pr.json", "0003_main.json"]
    assert first.parent == tmp_path / ".mcpswarm" / compare.machine_id()
    assert compare.find_baseline(tmp_path, "main", tmp_path) == third
    assert compare.find_baseline(tmp_path, "2", tmp_path) == second
    assert compare.find_baseline(tmp_path, "last", tmp_path) == third
    assert compare.find_baseline(tmp_path, str(first), tmp_path) == first
    assert compare.load(first)["scenarios"][0]["name"] == "baseline"
    with pytest.raises(UsageError, match=r"saved: 0001_main.json, 0002_pr.json, 0003_main.json"):
        compare.find_baseline(tmp_path, "nightly", tmp_path)


def test_load_rejects_what_is_not_a_report(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"schema": "other"}')
    with pytest.raises(UsageError, match="not an mcpswarm/1"):
        compare.load(tmp_path / "x.json")


def test_comparison_collects_regressions_and_prints_them(tmp_path: Path) -> None:
    base = {"schema": "mcpswarm/1", "created": "2026-01-01", "commit_info": {"id": "abc"},
            "scenarios": [scenario()]}  # fmt: skip
    comp = compare.Comparison(tmp_path / "b.json", base, "p99:+10%")
    comp.add(scenario(p99=20.0))
    comp.add(scenario("other"))
    assert len(comp.regressions) == 1
    text = "\n".join(compare.terminal_lines(comp.data))
    assert "REGRESSION" in text and "other: not in the baseline" in text and "[p99:+10%]" in text
