"""CPU cores and memory from Docker stats payloads, and the sampler's side-by-side samples.

The payloads are trimmed copies of what a Docker 20.10 engine (API 1.41, cgroup v1) answered
for a ``mcpswarm/server`` replica on this machine; the cgroup v2 one follows the engine's
documented shape (no ``percpu_usage``, no ``cache``: ``file`` is the page cache).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest

from pytest_mcpswarm.capacity.attribution import attribute
from pytest_mcpswarm.capacity.docker_stats import (
    SERVICE_LABEL,
    DockerStatsSampler,
    cpu_cores,
    cpu_limit,
    label_filter,
    memory_bytes,
    service_sampler,
    throttled_share,
)

MEMORY_V1: dict[str, Any] = {
    "usage": 30412800,
    "max_usage": 40570880,
    "stats": {
        "active_file": 3203072,
        "cache": 10891264,
        "inactive_file": 7688192,
        "rss": 18214912,
        "total_active_file": 3203072,
        "total_cache": 10891264,
        "total_inactive_file": 7688192,
        "total_rss": 18214912,
    },
    "limit": 268435456,
}

#: ``stats(stream=False, one_shot=True)``: no previous cycle, so precpu_stats is zeros and no host time.
ONE_SHOT: dict[str, Any] = {
    "read": "2026-11-27T13:55:36.831689784Z",
    "preread": "0001-01-01T00:00:00Z",
    "cpu_stats": {
        "cpu_usage": {
            "total_usage": 289600363,
            "percpu_usage": [144890563, 144709800],
            "usage_in_kernelmode": 70000000,
            "usage_in_usermode": 210000000,
        },
        "system_cpu_usage": 21345190000000,
        "online_cpus": 2,
        "throttling_data": {"periods": 97, "throttled_periods": 0, "throttled_time": 0},
    },
    "precpu_stats": {
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    },
    "memory_stats": MEMORY_V1,
    "name": "/mcpswarm-test_mcp-server.3.r8e33l0g2n15mjfowudqxqj97",
}

#: ``stats(stream=False)``: the engine read twice, ~1 s apart (host time 1.99e9 ns over 2 CPUs).
TWO_CYCLE: dict[str, Any] = {
    "read": "2026-11-27T13:57:54.186252314Z",
    "preread": "2026-11-27T13:57:53.179673863Z",
    "cpu_stats": {
        "cpu_usage": {"total_usage": 1_343_069_076, "percpu_usage": [673005775, 670063301]},
        "system_cpu_usage": 21613840000000,
        "online_cpus": 2,
    },
    "precpu_stats": {
        "cpu_usage": {"total_usage": 343_069_076, "percpu_usage": [173005775, 170063301]},
        "system_cpu_usage": 21611850000000,
        "online_cpus": 2,
    },
    "memory_stats": MEMORY_V1,
}

CGROUP_V2: dict[str, Any] = {
    "cpu_stats": {
        "cpu_usage": {"total_usage": 5_000_000_000, "usage_in_kernelmode": 1_000_000_000},
        "system_cpu_usage": 80_000_000_000,
        "online_cpus": 4,
    },
    "precpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
    "memory_stats": {
        "usage": 52_428_800,
        "stats": {"anon": 31_457_280, "file": 20_971_520, "inactive_file": 4_194_304, "active_file": 0},
        "limit": 536_870_912,
    },
}


def later(stats: Mapping[str, Any], cpu_ns: int, host_ns: int) -> dict[str, Any]:
    """The same container ``host_ns`` of host CPU time later, having used ``cpu_ns`` of it."""
    out = copy.deepcopy(dict(stats))
    out["cpu_stats"]["cpu_usage"]["total_usage"] += cpu_ns
    out["cpu_stats"]["system_cpu_usage"] += host_ns
    return out


def test_a_one_shot_reading_alone_has_no_rate() -> None:
    # precpu_stats has no system_cpu_usage: there is no interval to divide by.
    assert cpu_cores(ONE_SHOT) is None


def test_one_shot_readings_give_cores_against_the_previous_reading() -> None:
    # 0.5 s later on 2 CPUs the host spent 1e9 ns; the container used 4.5e8 ns: 0.9 of a core.
    second = later(ONE_SHOT, cpu_ns=450_000_000, host_ns=1_000_000_000)
    assert cpu_cores(second, ONE_SHOT["cpu_stats"]) == pytest.approx(0.9)
    # Two busy cores' worth.
    third = later(second, cpu_ns=1_000_000_000, host_ns=1_000_000_000)
    assert cpu_cores(third, second["cpu_stats"]) == pytest.approx(2.0)


def test_a_two_cycle_reading_uses_its_own_precpu_stats() -> None:
    # 1e9 ns used over 1.99e9 ns of host time on 2 CPUs: one core, a little more.
    assert cpu_cores(TWO_CYCLE) == pytest.approx(1e9 / 1.99e9 * 2)


def test_online_cpus_scales_and_percpu_usage_stands_in_when_it_is_missing() -> None:
    four = later(CGROUP_V2, cpu_ns=2_000_000_000, host_ns=4_000_000_000)
    assert cpu_cores(four, CGROUP_V2["cpu_stats"]) == pytest.approx(2.0)  # 2e9/4e9 x 4 CPUs
    old_engine = copy.deepcopy(TWO_CYCLE)
    for part in ("cpu_stats", "precpu_stats"):
        del old_engine[part]["online_cpus"]
    assert cpu_cores(old_engine) == pytest.approx(cpu_cores(TWO_CYCLE))  # 2 entries in percpu_usage
    bare = copy.deepcopy(CGROUP_V2)
    del bare["cpu_stats"]["online_cpus"]
    bare_later = later(bare, cpu_ns=1_000_000_000, host_ns=4_000_000_000)
    assert cpu_cores(bare_later, bare["cpu_stats"]) == pytest.approx(0.25)  # nothing known: 1 CPU


def test_a_restarted_container_or_a_standstill_has_no_rate() -> None:
    restarted = later(ONE_SHOT, cpu_ns=-289_000_000, host_ns=1_000_000_000)
    assert cpu_cores(restarted, ONE_SHOT["cpu_stats"]) is None
    assert cpu_cores(ONE_SHOT, ONE_SHOT["cpu_stats"]) is None  # no host time passed
    assert cpu_cores({}, None) is None


def test_memory_leaves_the_page_cache_out() -> None:
    assert memory_bytes(ONE_SHOT) == 30412800 - 10891264  # v1: usage - total_cache
    assert memory_bytes(CGROUP_V2) == 52_428_800 - 20_971_520  # v2: usage - file
    assert memory_bytes({"memory_stats": {"usage": 1000}}) == 1000
    assert memory_bytes({"memory_stats": {}}) is None  # a stopped container reports nothing


class FakeContainer:
    def __init__(self, cid: str) -> None:
        self.id = cid


class FakeEngine:
    """A DockerClient's two calls the sampler makes, answering from scripted readings."""

    def __init__(
        self,
        sides: Mapping[str, list[str]],
        readings: Mapping[str, list[dict[str, Any]]],
        nano_cpus: Mapping[str, int] | None = None,
    ) -> None:
        self.sides = sides
        self.nano_cpus = dict(nano_cpus or {})
        self.inspected: list[str] = []
        self.readings = {k: list(v) for k, v in readings.items()}
        self.containers = self
        self.api = self
        self.filters: list[dict[str, list[str]]] = []
        self.one_shot: list[object] = []

    def list(self, filters: dict[str, list[str]]) -> list[FakeContainer]:
        self.filters.append(filters)
        return [FakeContainer(cid) for cid in self.sides[filters["label"][0]]]

    def inspect_container(self, cid: str) -> dict[str, Any]:
        self.inspected.append(cid)
        return {"Id": cid, "HostConfig": {"NanoCpus": self.nano_cpus.get(cid, 0), "CpuQuota": 0}}

    def stats(self, cid: str, stream: bool, one_shot: object = None) -> dict[str, Any]:
        assert stream is False
        self.one_shot.append(one_shot)
        return self.readings[cid].pop(0)


def test_the_sampler_gives_the_local_sample_shape_per_side() -> None:
    s1, s2, c1 = ONE_SHOT, copy.deepcopy(ONE_SHOT), copy.deepcopy(ONE_SHOT)
    engine = FakeEngine(
        {f"{SERVICE_LABEL}=st_mcp-server": ["s1", "s2"], f"{SERVICE_LABEL}=st_mcp-client-high-load": ["c1"]},
        {
            # Two server replicas, one of them busy; one client replica, lightly loaded.
            "s1": [s1, later(s1, 480_000_000, 1_000_000_000), later(s1, 960_000_000, 2_000_000_000)],
            "s2": [s2, later(s2, 50_000_000, 1_000_000_000), later(s2, 100_000_000, 2_000_000_000)],
            "c1": [c1, later(c1, 100_000_000, 1_000_000_000), later(c1, 200_000_000, 2_000_000_000)],
        },
    )
    sampler = service_sampler(engine, servers="st_mcp-server", clients="st_mcp-client-high-load", t0=0.0)
    first = sampler.sample_once()
    assert first["server_cpu"] is None and first["server_replicas"] == 2  # no interval yet
    rows = [sampler.sample_once() for _ in range(2)]
    for row in rows:
        assert row["server_cpu_max"] == pytest.approx(0.96)  # the busiest replica
        assert row["server_cpu"] == pytest.approx(1.06)  # both
        assert row["client_cpu_max"] == row["client_cpu"] == pytest.approx(0.2)
        assert row["server_rss_mb"] == pytest.approx(2 * (30412800 - 10891264) / 2**20)
        assert row["client_replicas"] == 1
    assert set(engine.one_shot) == {True}  # a reading a tick, not the 2 s two-cycle form
    assert sorted(engine.inspected) == ["c1", "s1", "s2"]  # each container's limit read once
    assert rows[0]["server_cpu_share_max"] == pytest.approx(0.96)  # no limit: a share of one core
    assert engine.filters[0] == label_filter({SERVICE_LABEL: "st_mcp-server"})
    # The attribution reads these samples as it reads /proc ones.
    rows = [r | {"t": 0.5 * i} for i, r in enumerate(rows)]
    verdict = attribute(rows)
    assert verdict["verdict"] == "server_cpu", verdict["line"]
    assert "(a server replica at 96% of a core from t=0.0 s)" in verdict["line"]


def test_a_container_that_vanishes_mid_read_is_skipped_and_counted() -> None:
    import docker.errors

    class Gone(FakeEngine):
        def stats(self, cid: str, stream: bool, one_shot: object = None) -> dict[str, Any]:
            if cid == "gone":
                raise docker.errors.NotFound("No such container: gone")
            return super().stats(cid, stream, one_shot)

    engine = Gone(
        {"app=x": ["ok", "gone"]},
        {"ok": [ONE_SHOT, later(ONE_SHOT, 100_000_000, 1_000_000_000)]},
    )
    sampler = DockerStatsSampler(engine, servers={"app": "x"}, t0=0.0)
    sampler.sample_once()
    row = sampler.sample_once()
    assert row["server_replicas"] == 1 and row["server_cpu"] == pytest.approx(0.2)
    assert sampler.failed_reads == 2
    assert "client_cpu" not in row  # no client side asked for


def test_cpu_limits_come_from_nano_cpus_or_the_cfs_quota() -> None:
    assert cpu_limit({"HostConfig": {"NanoCpus": 500_000_000, "CpuQuota": 0}}) == 0.5  # --cpus / Swarm
    assert cpu_limit({"HostConfig": {"NanoCpus": 0, "CpuQuota": 25_000, "CpuPeriod": 100_000}}) == 0.25
    assert cpu_limit({"HostConfig": {"NanoCpus": 0, "CpuQuota": 50_000, "CpuPeriod": 0}}) == 0.5
    assert cpu_limit({"HostConfig": {"NanoCpus": 0, "CpuQuota": 0}}) is None
    assert cpu_limit({}) is None


def test_a_replica_at_its_cpu_limit_is_saturated_below_one_core() -> None:
    # The CI stack limits client replicas to 0.5 CPU: 0.48 cores is 96% of what one may use.
    c1 = copy.deepcopy(ONE_SHOT)
    readings = [c1] + [later(c1, 240_000_000 * i, 1_000_000_000 * i) for i in (1, 2, 3)]
    engine = FakeEngine({"app=srv": [], "app=gen": ["c1"]}, {"c1": readings}, nano_cpus={"c1": 500_000_000})
    sampler = DockerStatsSampler(engine, servers={"app": "srv"}, clients={"app": "gen"}, t0=0.0)
    sampler.sample_once()
    rows = [sampler.sample_once() | {"t": 0.5 * i} for i in range(3)]
    assert all(r["client_cpu_max"] == pytest.approx(0.48) for r in rows)
    assert all(r["client_cpu_share_max"] == pytest.approx(0.96) for r in rows)
    assert all(r["client_cpu_ceiling"] == 0.5 for r in rows)
    assert all(r["server_cpu"] is None and r["server_replicas"] == 0 for r in rows)
    verdict = attribute(rows)
    assert verdict["verdict"] == "client_cpu", verdict["line"]
    assert "(a generator replica at 96% of its 0.5-core CPU limit from t=0.0 s)" in verdict["line"]
    # Read as cores alone, the same replica would never reach the 90% of a core threshold.
    assert attribute([{k: v for k, v in r.items() if "share" not in k} for r in rows])["verdict"] == "none"


def test_throttling_is_the_share_of_cfs_periods_that_hit_the_limit() -> None:
    limited = copy.deepcopy(ONE_SHOT)
    after = later(limited, 20_000_000, 1_000_000_000)
    after["cpu_stats"]["throttling_data"] = {"periods": 97 + 10, "throttled_periods": 8, "throttled_time": 9}
    assert throttled_share(after, limited["cpu_stats"]) == pytest.approx(0.8)
    assert throttled_share(limited) is None  # one-shot: precpu_stats counted nothing yet
    unlimited = copy.deepcopy(limited)
    unlimited["cpu_stats"]["throttling_data"]["periods"] = 0
    assert throttled_share(unlimited, unlimited["cpu_stats"]) is None  # no quota, no periods


def test_an_engine_older_than_api_1_41_gets_two_cycle_reads() -> None:
    import docker.errors

    class Old(FakeEngine):
        def stats(self, cid: str, stream: bool, one_shot: object = None) -> dict[str, Any]:
            if one_shot is not None:
                self.one_shot.append(one_shot)
                raise docker.errors.InvalidVersion("one_shot is not supported for API version < 1.41")
            return super().stats(cid, stream, one_shot)

    engine = Old({"app=x": ["a"]}, {"a": [TWO_CYCLE, TWO_CYCLE]})
    sampler = DockerStatsSampler(engine, servers={"app": "x"}, t0=0.0)
    row = sampler.sample_once()
    # No earlier reading of ours, but the engine's own precpu_stats give the rate at once.
    assert row["server_cpu"] == pytest.approx(cpu_cores(TWO_CYCLE))
    assert engine.one_shot == [True, None]
    sampler.sample_once()
    assert engine.one_shot == [True, None, None]  # remembered: no failing call each time
