"""Fault spec parsing (pure) and the seeded injector."""

from __future__ import annotations

import pytest

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.server.faults import DelayDist, FaultInjector, Stall, parse_faults


def test_parse_every_form() -> None:
    plan = parse_faults(
        [
            "delay:exp:5ms",
            "delay:uniform:1ms-10ms",
            "stall:500ms/2s",
            "drop:1%",
            "malformed:0.5%",
            "error:2%",
            "close:0.1%",
        ]
    )
    assert plan.delays == (DelayDist("exp", 0.005), DelayDist("uniform", 0.001, 0.01))
    assert plan.stall == Stall(0.5, 2.0)
    assert dict(plan.reply) == pytest.approx(
        {"drop": 0.01, "malformed": 0.005, "error": 0.02, "close": 0.001}
    )
    assert [k for k, _ in plan.reply] == ["close", "drop", "malformed", "error"]


@pytest.mark.parametrize(
    "spec",
    [
        "drop",
        "drop:x%",
        "drop:101%",
        "delay:exp:5",
        "delay:uniform:5ms",
        "delay:uniform:9ms-1ms",
        "stall:1s/1s",
        "stall:1s",
        "nope:1%",
        "",
    ],
)
def test_bad_specs_name_accepted_forms(spec: str) -> None:
    with pytest.raises(UsageError, match="accepted forms: delay:exp:MEAN"):
        parse_faults([spec])


def test_injector_is_seeded_and_counts() -> None:
    plan = parse_faults(["drop:10%", "error:10%", "delay:uniform:1ms-2ms"])
    runs = []
    for _ in range(2):
        inj = FaultInjector(plan, seed=42)
        decisions = [inj.reply_fault() for _ in range(1000)]
        delays = [inj.extra_delay() for _ in range(10)]
        runs.append((decisions, delays))
        assert inj.counts["drop"] == decisions.count("drop")
        assert inj.counts["error"] == decisions.count("error")
        assert 50 < inj.counts["drop"] < 150
        assert inj.counts["delay"] == 10
        assert all(0.001 <= d <= 0.002 for d in delays)
    assert runs[0] == runs[1]
