"""The ``cpu:D`` fault: parsing, and that it burns thread CPU time (not wall time) per call, counted."""

from __future__ import annotations

import time

import pytest

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.server.faults import FaultInjector, FaultPlan, TimeWindow, parse_faults


def test_cpu_parses_a_duration_and_a_window() -> None:
    assert parse_faults(["cpu:2ms"]).cpu_s == pytest.approx(0.002)
    plan = parse_faults(["cpu:500us@1s-3s", "drop:1%"])
    assert plan.cpu_s == pytest.approx(0.0005)
    assert plan.window("cpu") == TimeWindow(1.0, 3.0)
    assert not plan.empty and FaultPlan().empty


@pytest.mark.parametrize(("specs", "why"), [
    (["cpu:0ms"], "positive duration"),
    (["cpu:2"], "is not a duration"),
    (["cpu:1ms", "cpu:2ms"], "only one cpu fault"),
])  # fmt: skip
def test_bad_cpu_specs_name_the_accepted_forms(specs: list[str], why: str) -> None:
    with pytest.raises(UsageError, match=why) as info:
        parse_faults(specs)
    assert "cpu:D" in info.value.fix_text


def test_each_call_burns_its_cpu_time_and_is_counted() -> None:
    injector = FaultInjector(parse_faults(["cpu:20ms"]), seed=1)
    cpu0 = time.thread_time()
    for _ in range(3):
        injector.burn_cpu()
    burnt = time.thread_time() - cpu0
    assert 0.06 <= burnt < 0.2
    assert injector.counts["cpu"] == 3 and injector.seconds["cpu"] == pytest.approx(0.06)


def test_outside_its_window_nothing_is_burnt() -> None:
    now = [0.0]
    injector = FaultInjector(parse_faults(["cpu:50ms@1s-2s"]), seed=1, clock=lambda: now[0])
    cpu0 = time.thread_time()
    injector.burn_cpu()
    assert time.thread_time() - cpu0 < 0.04 and injector.counts["cpu"] == 0
    now[0] = 1.5
    injector.burn_cpu()
    assert injector.counts["cpu"] == 1
