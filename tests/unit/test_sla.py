"""The SLA language: parsing, every error path, and evaluation."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.sla import METRICS, Check, Sla, evaluate, parse_sla
from pytest_mcpswarm.stats.snapshot import StatsSnapshot


class View:
    def __init__(
        self, overall: dict[str, float | None], windows: dict[str, list[tuple[int, float | None]]]
    ) -> None:
        self._overall = overall
        self._windows = windows
        self.asked: list[tuple[str, int]] = []

    def overall(self, metric: str) -> float | None:
        return self._overall.get(metric)

    def windows(self, metric: str, width_s: int) -> Sequence[tuple[int, float | None]]:
        self.asked.append((metric, width_s))
        return self._windows.get(metric, [])


def test_parse_the_documented_example() -> None:
    sla = parse_sla("p99<50ms, p50<=5ms, error_rate<0.1%, rps>=2400, not_sent==0, p99[10s]<100ms")
    assert sla.checks == (
        Check("p99", "<", 50_000.0, "ms"),
        Check("p50", "<=", 5_000.0, "ms"),
        Check("error_rate", "<", 0.001, "%"),
        Check("rps", ">=", 2400.0),
        Check("not_sent", "==", 0.0),
        Check("p99", "<", 100_000.0, "ms", window_s=10),
    )
    assert str(sla) == "p99<50ms, p50<=5ms, error_rate<0.1%, rps>=2400, not_sent==0, p99[10s]<100ms"


@pytest.mark.parametrize(
    ("text", "check"),
    [
        ("p999 < 1.5 s", Check("p999", "<", 1_500_000.0, "s")),
        ("max<250us", Check("max", "<", 250.0, "us")),
        ("mean<250µs", Check("mean", "<", 250.0, "µs")),
        ("p90 > .5ms", Check("p90", ">", 500.0, "ms")),
        ("P95<2MS", Check("p95", "<", 2000.0, "ms")),
        ("timeout_rate<=0.001", Check("timeout_rate", "<=", 0.001)),
        ("error_rate != 100%", Check("error_rate", "!=", 1.0, "%")),
        ("errors==0", Check("errors", "==", 0.0)),
        ("timeouts<3", Check("timeouts", "<", 3.0)),
        ("rps [ 30s ] > 10", Check("rps", ">", 10.0, window_s=30)),
    ],
)
def test_parse_forms(text: str, check: Check) -> None:
    assert parse_sla(text).checks == (check,)


def test_percent_threshold_equals_the_computed_rate_exactly() -> None:
    (check,) = parse_sla("error_rate<=0.1%").checks
    assert check.threshold == 1 / 1000  # Fraction arithmetic: no 0.0010000000000000002


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "SLA expression is empty"),
        ("p99<5ms,", "check 2 is empty"),
        ("<5ms", "expected a metric name"),
        ("p98<5ms", "unknown metric 'p98'; accepted: p50, p90"),
        ("p99[10m]<5ms", "window '[10m]' must be [Ns]"),
        ("p99[0s]<5ms", "window '[0s]' must be [Ns]"),
        ("p99=5ms", "expected one of < <= > >= == != after 'p99', got '=5ms'"),
        ("p99", "got 'nothing'"),
        ("p99<fast", "expected a non-negative number and a unit (us, ms, s) after '<', got 'fast'"),
        ("p99<-5ms", "got '-5ms'"),
        ("p99<5", "needs a unit us, ms or s (e.g. 50ms), got no unit"),
        ("p99<5min", "got unit 'min'"),
        ("error_rate<5", "did you mean 5%?"),
        ("error_rate<5ms", "takes % or a bare fraction, got unit 'ms'"),
        ("error_rate<101%", "at most 100%"),
        ("error_rate<x", "(a fraction, or a percentage with %)"),
        ("rps>10/s", "without a unit"),
        ("rps>10k", "takes no unit, got 'k'"),
    ],
)
def test_parse_errors_name_the_bad_token(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_sla(text)
    assert message in str(info.value)
    assert "p99<50ms, error_rate<0.1%" in str(info.value)  # the accepted form


def test_metric_table_is_re_exported() -> None:
    assert "p99" in METRICS and METRICS["rps"].higher_is_better


def test_evaluate_overall_checks() -> None:
    sla = parse_sla("p99<50ms, error_rate<0.1%, rps>=2400, not_sent==0, p50<1ms")
    view = View({"p99": 12_345.0, "error_rate": 0.002, "rps": 2500.0, "not_sent": 0.0}, {})
    outcome = evaluate(sla, view)
    assert not outcome.passed
    assert [r.passed for r in outcome.results] == [True, False, True, True, False]
    assert outcome.results[0].to_dict() == {
        "metric": "p99", "op": "<", "threshold": 50.0, "actual": 12.345, "unit": "ms", "passed": True,
        "window_s": None, "worst_window_s": None, "failed_windows": 0, "windows": 0,
    }  # fmt: skip
    assert outcome.results[1].to_dict()["actual"] == 0.2
    assert outcome.message.splitlines() == [
        "SLA failed (2 of 5 checks)",
        "  PASS p99 < 50ms: actual 12.345ms",
        "  FAIL error_rate < 0.1%: actual 0.2%",
        "  PASS rps >= 2400: actual 2500",
        "  PASS not_sent == 0: actual 0",
        "  FAIL p50 < 1ms: no data (nothing was measured for p50)",
    ]
    assert outcome.to_dict()["passed"] is False and len(outcome.to_dict()["checks"]) == 5


def test_evaluate_passes_when_everything_holds() -> None:
    outcome = evaluate(parse_sla("p99<=1ms"), View({"p99": 1000.0}, {}))
    assert outcome.passed and outcome.message.startswith("SLA passed (1 checks)")


@pytest.mark.parametrize(
    ("expr", "values", "passed", "worst_start", "worst", "failed"),
    [
        ("p99[10s]<100ms", [(0, 50e3), (1, 150e3), (2, 120e3), (3, None)], False, 1, 150.0, 2),
        ("p99[10s]<100ms", [(0, 50e3), (1, 60e3)], True, 1, 60.0, 0),
        ("rps[10s]>=2400", [(0, 2500.0), (1, 2300.0), (2, 2350.0)], False, 1, 2300.0, 2),
        ("not_sent[10s]==0", [(0, 0.0), (1, 3.0), (2, 7.0)], False, 2, 7.0, 2),
        ("not_sent[10s]==0", [(0, 0.0), (1, 0.0)], True, 0, 0.0, 0),
        ("errors[10s]!=0", [(0, 1.0), (1, 0.0), (2, 0.0)], False, 1, 0.0, 2),
        ("errors[10s]!=0", [(0, 1.0), (1, 2.0)], True, 0, 1.0, 0),
    ],
)
def test_windowed_checks_report_the_worst_window(  # noqa: PLR0917 (parametrized)
    expr: str,
    values: list[tuple[int, float | None]],
    passed: bool,
    worst_start: int,
    worst: float,
    failed: int,
) -> None:
    (check,) = parse_sla(expr).checks
    view = View({}, {check.metric: values})
    (result,) = evaluate(Sla((check,)), view).results
    assert view.asked == [(check.metric, 10)]
    assert result.passed is passed
    assert result.worst_window_s == worst_start
    assert result.to_dict()["actual"] == worst
    assert result.failed_windows == failed
    assert result.windows == sum(1 for _, v in values if v is not None)


def test_windowed_check_without_data_fails_and_says_so() -> None:
    outcome = evaluate(parse_sla("p99[5s]<1ms"), View({}, {"p99": [(0, None)]}))
    assert not outcome.passed
    assert "FAIL p99[5s] < 1ms: no data" in outcome.message


def test_windowed_message_names_the_window() -> None:
    outcome = evaluate(parse_sla("p99[10s]<100ms"), View({}, {"p99": [(0, 1e3), (4, 2e5)]}))
    assert (
        "FAIL p99[10s] < 100ms: worst 10 s window (t=4..14 s) 200ms, 1 of 2 windows failed" in outcome.message
    )


def test_evaluate_against_a_real_snapshot() -> None:
    snap = StatsSnapshot()
    for second in range(20):
        for _ in range(10):
            snap.record_scheduled("ping")
            snap.record_sent("ping")
            snap.record_ok("ping", second + 0.5, 200_000 if second == 15 else 1_000)
    snap.mark_elapsed(20.0)
    outcome = evaluate(parse_sla("p50<2ms, rps>=10, not_sent==0, error_rate<0.1%, p99[5s]<100ms"), snap)
    assert [r.passed for r in outcome.results] == [True, True, True, True, False]
    windowed = outcome.results[-1]
    assert windowed.windows == 16 and windowed.failed_windows == 5  # spans starting at 11..15 hold second 15
    assert windowed.worst_window_s == 11
