"""The generator-bound verdict, rule by rule."""

from __future__ import annotations

from pytest_mcpswarm.load.health import GeneratorRule

RULE = GeneratorRule()


def test_a_healthy_generator_has_no_reasons() -> None:
    assert (
        RULE.reasons(schedule_lag_p99_ms=0.8, latency_p99_ms=3.0, loop_lag_p99_ms=1.0, worker_cpu=[0.4]) == []
    )


def test_schedule_lag_counts_only_when_it_makes_the_tail() -> None:
    # 8 ms late sends behind a 9 ms p99: the tail is the generator's lateness.
    assert RULE.reasons(schedule_lag_p99_ms=8.0, latency_p99_ms=9.0)
    # 8 ms late sends behind a 400 ms p99: the server's queueing dominates.
    assert RULE.reasons(schedule_lag_p99_ms=8.0, latency_p99_ms=400.0) == []
    # Under the bound nothing is said, whatever the share.
    assert RULE.reasons(schedule_lag_p99_ms=4.9, latency_p99_ms=5.0) == []


def test_each_other_rule_names_its_evidence() -> None:
    (loop,) = RULE.reasons(schedule_lag_p99_ms=None, latency_p99_ms=None, loop_lag_p99_ms=35.0)
    assert "event-loop lag p99 35.0 ms" in loop
    (late,) = RULE.reasons(schedule_lag_p99_ms=None, latency_p99_ms=None, not_sent_late=12)
    assert late.startswith("12 requests not sent")
    (cpu,) = RULE.reasons(schedule_lag_p99_ms=None, latency_p99_ms=None, worker_cpu=[0.5, 0.97])
    assert "worker 1 97%" in cpu and "worker 0" not in cpu


def test_bounds_are_configurable() -> None:
    strict = GeneratorRule(lag_bound_ms=1.0, cpu_bound=0.3)
    assert len(strict.reasons(schedule_lag_p99_ms=2.0, latency_p99_ms=3.0, worker_cpu=[0.4])) == 2
