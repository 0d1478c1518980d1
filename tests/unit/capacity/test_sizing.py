"""The arithmetic of `mcpswarm plan`, the calibration file, and the compose override."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pytest_mcpswarm.capacity.calibrate import next_calibration_rate
from pytest_mcpswarm.capacity.sizing import Calibration, calibration_from_run, override_document, plan_swarm
from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.load.profiles import get_profile

BOMBER = get_profile("message-bomber")  # 10 clients x 10,000 msg/s, ping


def test_replicas_cover_the_rate_at_the_headroom() -> None:
    plan = plan_swarm(BOMBER, 200_000, 100_000, headroom=0.7)
    # 200,000 / (100,000 x 0.7) = 2.86 -> 3 replicas of 66,667 req/s, each 0.67 core.
    assert plan.replicas == 3
    assert plan.rate_per_replica == pytest.approx(200_000 / 3)
    assert plan.cpu_per_replica == pytest.approx(2 / 3)
    assert plan.cpu_per_replica <= plan.headroom
    assert plan.cpu_reservation == 0.7 and plan.cpu_limit == 1.0
    assert plan.total_cores == pytest.approx(2.1)
    # The profile's 10,000 msg/s per connection: 20 connections, 7 per replica.
    assert plan.clients_per_replica == 7
    assert plan.rate_per_client == pytest.approx(200_000 / 3 / 7)
    assert plan.clients_per_replica * plan.rate_per_client * plan.replicas == pytest.approx(200_000)


@pytest.mark.parametrize(
    ("total", "per_core", "headroom"),
    [(1, 1000, 0.7), (70_000, 100_000, 0.7), (70_001, 100_000, 0.7), (1e6, 12_345, 0.5), (5e5, 3e5, 1.0)],
)
def test_replicas_is_the_least_that_keeps_each_core_under_the_headroom(
    total: float, per_core: float, headroom: float
) -> None:
    plan = plan_swarm(BOMBER, total, per_core, headroom=headroom)
    assert plan.cpu_per_replica <= headroom + 1e-9
    assert plan.replicas == 1 or total / ((plan.replicas - 1) * per_core) > headroom
    assert plan.replicas == max(1, math.ceil(total / (per_core * headroom) - 1e-9))
    assert plan.cpu_reservation >= plan.cpu_per_replica - 1e-9


def test_nodes_from_cores_per_node() -> None:
    plan = plan_swarm(BOMBER, 200_000, 100_000, cores_per_node=2)
    # Reservations of 0.7 core: two fit on a 2-core node -> 3 replicas need 2 nodes.
    assert plan.nodes == 2


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [({"total_rate": 0}, "total rate"), ({"per_core_rps": -1}, "per-core"), ({"headroom": 1.5}, "headroom")],
)
def test_bad_inputs(kwargs: dict[str, float], word: str) -> None:
    args: dict[str, float] = {"total_rate": 1000, "per_core_rps": 1000} | kwargs
    with pytest.raises(UsageError, match=word):
        plan_swarm(BOMBER, args["total_rate"], args["per_core_rps"], headroom=kwargs.get("headroom", 0.7))


def test_calibration_round_trip_and_errors(tmp_path: Path) -> None:
    cal = calibration_from_run(
        "ping", answered=30_000, cpu_s=0.5, seconds=2.0, offered_rps=15_000, machine={}
    )
    assert cal.per_core_rps == 60_000 and cal.cpu_fraction == 0.25
    path = cal.save(tmp_path / "c.json")
    assert Calibration.load(path) == cal
    with pytest.raises(UsageError, match="no calibration"):
        Calibration.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"format": 9}')
    with pytest.raises(UsageError, match="not a calibration file"):
        Calibration.load(tmp_path / "bad.json")
    with pytest.raises(UsageError, match="measured nothing"):
        calibration_from_run("ping", answered=0, cpu_s=0.0, seconds=1.0, offered_rps=1.0, machine={})


def test_calibration_rounds_move_toward_the_target_cpu() -> None:
    def cal(cpu_fraction: float, answered_share: float = 1.0) -> Calibration:
        return Calibration("p", 1.0, int(10_000 * 2 * answered_share), cpu_fraction * 2, 2.0, 10_000,
                           cpu_fraction, {}, 0.0)  # fmt: skip

    assert next_calibration_rate(cal(0.1), target_cpu=0.7) == 40_000  # capped at 4x
    assert next_calibration_rate(cal(0.35), target_cpu=0.7) == pytest.approx(20_000)
    assert next_calibration_rate(cal(0.6), target_cpu=0.7) is None  # close enough
    assert next_calibration_rate(cal(0.1, answered_share=0.8), target_cpu=0.7) is None  # server-bound


def test_override_for_a_service_the_stack_lacks_is_complete() -> None:
    plan = plan_swarm(BOMBER, 200_000, 100_000)
    doc = override_document(plan, service_exists=False)
    svc = doc["services"]["mcp-client-message-bomber"]
    assert svc["deploy"]["replicas"] == 3
    assert svc["deploy"]["resources"]["reservations"]["cpus"] == "0.7"
    assert svc["deploy"]["resources"]["limits"]["cpus"] == "1"
    assert svc["environment"]["CLIENT_COUNT"] == "7"
    assert svc["image"] and svc["networks"] and svc["deploy"]["placement"]["constraints"]
    existing = override_document(plan, service_exists=True)["services"]["mcp-client-message-bomber"]
    assert set(existing) == {"environment", "deploy"}
    assert set(existing["deploy"]) == {"replicas", "resources"}
