"""PASS/FAIL with reasons, generator-bound marks and baseline deltas, from scenario dicts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_mcpswarm.report.verdict import check_line, deltas, error_rate, fmt_ms, fmt_pct, verdict

Factory = Callable[..., dict[str, Any]]


def test_no_sla(scenario: Factory) -> None:
    v = verdict(scenario())
    assert v.status == "NO SLA"
    assert v.reasons == ("no SLA was set for this scenario",)
    assert not v.generator_bound and not v.generator_checked


def test_pass_says_how_many_checks(scenario: Factory, sla_check: Any) -> None:
    sla = {
        "passed": True,
        "message": "",
        "checks": [sla_check("p99", "<", 50.0, 10.0, "ms", passed=True)] * 2,
    }
    v = verdict(scenario(sla=sla))
    assert (v.status, v.reasons, v.checks_total) == ("PASS", ("all 2 SLA checks passed",), 2)
    one = verdict(scenario(sla={**sla, "checks": sla["checks"][:1]}))
    assert one.reasons == ("the SLA check passed",)


def test_fail_lists_each_failed_check_with_threshold_and_actual(scenario: Factory, sla_check: Any) -> None:
    sla = {"passed": False, "message": "m", "checks": [
        sla_check("p99", "<", 50.0, 111.167, "ms", passed=False),
        sla_check("error_rate", "<", 0.1, 0.0, "%", passed=True),
        sla_check("p99[2s]", "<", 100.0, 141.183, "ms", passed=False, window_s=2, worst_window_s=2,
                  failed_windows=2, windows=5),
    ]}  # fmt: skip
    v = verdict(scenario(sla=sla))
    assert v.status == "FAIL"
    assert v.reasons == (
        "p99 < 50ms: actual 111.167ms",
        "p99[2s] < 100ms: worst 2 s window (t=2–4 s) 141.183ms, 2 of 5 windows failed",
    )


def test_failed_check_without_data(sla_check: Any) -> None:
    assert check_line(sla_check("p99", "<", 5.0, None, "ms", passed=False)) == "p99 < 5ms: no data"


def test_generator_bound_comes_first_with_its_evidence(scenario: Factory) -> None:
    s = scenario(
        generator_bound=True, generator={"reason": "worker CPU 98%", "schedule_lag_ms": {"p99": 40.0}}
    )
    v = verdict(s)
    assert v.generator_bound and v.generator_checked
    assert v.reasons[0].startswith("load generator saturated")
    assert v.generator_note == "worker CPU 98%; schedule lag p99 40.0 ms"
    assert verdict(scenario(generator_bound=False)).generator_checked


def test_error_rate_counts_sent_requests(scenario: Factory) -> None:
    assert error_rate(scenario(errors=40)) == pytest.approx(40 / 1000)
    assert error_rate({"requests": {"ok": 0, "errors": 0, "timeouts": 0}}) is None


def test_deltas_in_both_shapes() -> None:
    as_map = {"baseline": "main", "scenarios": {"a": {
        "p99": {"baseline": 10.0, "current": 12.0, "unit": "ms", "regressed": True},
        "rps": {"baseline": 500, "current": 450, "delta": -50, "delta_pct": -10.0},
    }}}  # fmt: skip
    (p99, rps) = deltas(as_map, "a")
    assert (p99.metric, p99.delta, p99.delta_pct, p99.unit, p99.regressed) == ("p99", 2.0, 20.0, "ms", True)
    assert (rps.delta, rps.delta_pct, rps.regressed) == (-50.0, -10.0, None)
    as_list = {"scenarios": {"a": [{"metric": "p50", "baseline": 0, "current": 1}]}}
    (p50,) = deltas(as_list, "a")
    assert (p50.metric, p50.delta, p50.delta_pct) == ("p50", 1.0, None)
    assert deltas(as_map, "other") == () and deltas(None, "a") == ()
    assert deltas({"scenarios": {"a": {"p99": {"current": 3}}}}, "a") == ()  # no baseline value: skipped


@pytest.mark.parametrize(
    ("value", "text"), [(None, "—"), (0.2041, "0.204 ms"), (28.54, "28.5 ms"), (1234.5, "1,234 ms")]
)
def test_fmt_ms(value: float | None, text: str) -> None:
    assert fmt_ms(value) == text


def test_fmt_pct() -> None:
    assert fmt_pct(0.00123) == "0.12%" and fmt_pct(None) == "—"
