"""Scenario definitions: the seed's shapes, scaling, overrides and their error messages."""

from __future__ import annotations

import pytest

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.load.plan import plan_from_profile
from pytest_mcpswarm.scenarios import SCENARIOS, check_overrides, get_scenario


def test_the_seed_scenarios_have_their_shapes() -> None:
    base = SCENARIOS["baseline"]
    assert (base.duration_s, base.warmup_s, base.profile.clients, base.profile.rate) == (300, 30, 25, 100)
    flood = SCENARIOS["connection-flood"].run_profile().ramp()
    assert flood.duration_s == 600 and flood.max_connections == 500
    assert flood.connections_at(150) == 250 and flood.connections_at(400) == 500
    assert flood.connections_at(599.9) == 25 and flood.rate_at(10) == 10
    bomb = SCENARIOS["message-bombing"].run_profile().ramp()
    assert bomb.duration_s == 450 and bomb.connections_at(0) == 20
    assert (bomb.rate_at(10), bomb.rate_at(100), bomb.rate_at(400)) == (100, 10_000, 100)
    for name in ("high-load", "low-load", "slow-client"):
        assert SCENARIOS[name].duration_s == 120


def test_scaling_shrinks_durations_and_clients_but_not_rates() -> None:
    small = SCENARIOS["message-bombing"].scaled(0.05, 0.1)
    assert [(p.duration_s, p.clients, p.rate) for p in small.phases] == [
        (1.5, 2, 100), (15.0, 2, 10_000), (6.0, 2, 100)
    ]  # fmt: skip
    assert SCENARIOS["baseline"].scaled(0.1, 0.01).warmup_s == 3.0
    assert SCENARIOS["baseline"].scaled(0.1, 0.01).profile.clients == 1
    flood = SCENARIOS["connection-flood"].scaled(1, 0.1)
    assert [p.clients for p in flood.phases] == [50, 50, 3]


def test_overrides_for_flat_and_phased_scenarios() -> None:
    base = SCENARIOS["baseline"].with_overrides({"clients": "5", "rate": "20", "warmup_s": "2s"})
    assert (base.profile.clients, base.profile.rate, base.warmup_s) == (5, 20, 2)
    bomb = SCENARIOS["message-bombing"].with_overrides({"bombing.rate": "500", "bombing.duration_s": "1m"})
    assert [(p.name, p.duration_s, p.rate) for p in bomb.phases][1] == ("bombing", 60, 500)
    assert SCENARIOS["baseline"].with_overrides({"rps_floor": "90%"}).rps_floor == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("name", "fields", "words"),
    [
        ("baseline", {"rate": "fast"}, "field 'rate' must be a positive number"),
        ("baseline", {"color": "red"}, "unknown field 'color'"),
        ("message-bombing", {"rate": "5"}, "is phased, so rate is set per phase"),
        ("message-bombing", {"boom.rate": "5"}, "no phase 'boom'"),
        ("message-bombing", {"bombing.payload": "5"}, "unknown phase field"),
        ("baseline", {"rps_floor": "2"}, "fraction 0..1"),
    ],
)
def test_bad_overrides_name_the_field(name: str, fields: dict[str, str], words: str) -> None:
    with pytest.raises(UsageError, match=words):
        SCENARIOS[name].with_overrides(fields)


def test_check_overrides_validates_builtins_and_field_names() -> None:
    check_overrides({"baseline.clients": "3", "mine.rate": "5", "mine.spike.clients": "2"})
    with pytest.raises(UsageError, match=r"--mcpswarm-set baseline: clients='x'"):
        check_overrides({"baseline.clients": "x"})
    with pytest.raises(UsageError, match="unknown field 'colour'"):
        check_overrides({"mine.colour": "red"})


def test_effective_sla_adds_the_throughput_floor() -> None:
    assert SCENARIOS["baseline"].effective_sla(2500) == "p95<100ms, p99<200ms, error_rate<0.1%, rps>=2375"
    assert SCENARIOS["slow-client"].effective_sla(5) == "p99<100ms, error_rate<0.1%"


def test_get_scenario_accepts_profiles_and_rejects_unknown_names() -> None:
    assert get_scenario("normal").profile.clients == 25
    with pytest.raises(UsageError, match="unknown scenario 'nope'"):
        get_scenario("nope")


def test_plans_build_from_every_scenario() -> None:
    for scenario in SCENARIOS.values():
        plan = plan_from_profile(scenario.scaled(0.01, 0.1).run_profile(), target="ws://127.0.0.1:1/mcp/ws")
        assert plan.duration_s == pytest.approx(scenario.duration_s * 0.01)
