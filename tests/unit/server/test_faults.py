"""Fault spec parsing (pure) and the seeded injector."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.server.faults import DelayDist, FaultInjector, Refuse, Stall, TimeWindow, parse_faults
from pytest_mcpswarm.server.throttle import ReadThrottle


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


def test_parse_new_kinds_and_windows() -> None:
    plan = parse_faults(
        [
            "refuse:25%@1s-2s",
            "slowread:16KB/s",
            "version:2099-01-01@500ms-",
            "error:50%@2s-4s",
            "delay:fixed:5ms@-1s",
        ]
    )
    assert plan.refuse == Refuse(p=0.25)
    assert plan.slowread_bps == 16 * 1024
    assert plan.version == "2099-01-01"
    assert plan.window("refuse") == TimeWindow(1.0, 2.0)
    assert plan.window("version") == TimeWindow(0.5, None)
    assert plan.window("error") == TimeWindow(2.0, 4.0)
    assert plan.window("slowread") is None
    assert plan.delays == (DelayDist("fixed", 0.005, window=TimeWindow(0.0, 1.0)),)
    assert parse_faults(["refuse:after:3"]).refuse == Refuse(after=3)
    assert parse_faults(["slowread:2MB/s"]).slowread_bps == 2 * 1024 * 1024
    assert parse_faults(["slowread:100B/s"]).slowread_bps == 100
    assert parse_faults([]).empty and not plan.empty


@pytest.mark.parametrize(
    "spec",
    ["refuse", "refuse:after:x", "refuse:101%", "slowread:10", "slowread:0KB/s", "slowread:fast",
     "version:", "version:a b", "drop:1%@", "drop:1%@2s", "drop:1%@4s-2s", "drop:1%@x-2s"],
)  # fmt: skip
def test_bad_new_specs_name_accepted_forms(spec: str) -> None:
    with pytest.raises(UsageError, match=r"accepted forms: .*slowread:RATE"):
        parse_faults([spec])


@pytest.mark.parametrize("kind", ["stall:1s/2s", "refuse:1%", "slowread:1KB/s", "version:x"])
def test_single_kinds_only_once(kind: str) -> None:
    with pytest.raises(UsageError, match="only one"):
        parse_faults([kind, kind])


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_windows_gate_injection_and_counting() -> None:
    clock = Clock()
    inj = FaultInjector(parse_faults(["error:100%@1s-2s", "delay:fixed:1ms@1s-", "version:v9@-1s"]), 1, clock)
    assert inj.reply_fault() is None and inj.extra_delay() == 0.0
    assert inj.wrong_version() == "v9"
    clock.t += 1.5
    assert inj.reply_fault() == "error" and inj.extra_delay() == 0.001
    assert inj.wrong_version() is None
    clock.t += 1.0
    assert inj.reply_fault() is None and inj.extra_delay() == 0.001
    assert inj.counts["error"] == 1 and inj.counts["delay"] == 2 and inj.counts["version"] == 1


def test_refuse_after_n_and_percent() -> None:
    inj = FaultInjector(parse_faults(["refuse:after:2"]), None)
    assert [inj.refuse_connection() for _ in range(5)] == [False, False, True, True, True]
    assert inj.counts["refuse"] == 3
    inj = FaultInjector(parse_faults(["refuse:30%"]), 4)
    hits = sum(inj.refuse_connection() for _ in range(1000))
    assert inj.counts["refuse"] == hits and 230 < hits < 370
    assert FaultInjector(parse_faults([]), None).refuse_connection() is False


def test_slowread_rate_and_time_are_counted() -> None:
    clock = Clock()
    inj = FaultInjector(parse_faults(["slowread:1KB/s@1s-"]), None, clock)
    assert inj.slowread_rate() is None
    clock.t += 1
    assert inj.slowread_rate() == 1024
    inj.count_slowread(0.25)
    inj.count_slowread(0.5)
    assert inj.counts["slowread"] == 2 and inj.seconds["slowread"] == 0.75


class FakeLoop:
    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, Any]] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, fn: Any) -> Any:
        self.timers.append((self.now + delay, fn))
        return _Handle()


class _Handle:
    def cancel(self) -> None:
        pass


class FakeTransport:
    def __init__(self) -> None:
        self.paused = False
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        assert not self.paused
        self.paused = True

    def resume_reading(self) -> None:
        assert self.paused
        self.paused = False


def test_read_throttle_pauses_for_what_the_bytes_cost() -> None:
    loop, transport = FakeLoop(), FakeTransport()
    inj = FaultInjector(parse_faults(["slowread:1KB/s"]), None)
    throttle = ReadThrottle(loop, transport, inj)  # type: ignore[arg-type]
    throttle.consumed(1)  # 1 ms of budget: below the minimum pause, folded into the next read
    assert not transport.paused and inj.counts["slowread"] == 0
    throttle.consumed(511)  # 512 bytes in all: half a second
    assert transport.paused and loop.timers[0][0] == pytest.approx(0.5)
    throttle.consumed(1024)  # read while paused (already buffered): owed, no second timer
    assert len(loop.timers) == 1
    loop.now, fn = loop.timers.pop()
    fn()
    assert not transport.paused
    throttle.consumed(0)  # the debt left: 1 s more
    assert transport.paused and loop.timers[0][0] == pytest.approx(1.5)
    assert inj.counts["slowread"] == 2 and inj.seconds["slowread"] == pytest.approx(1.5)


def test_read_throttle_is_idle_without_an_active_fault() -> None:
    loop, transport = FakeLoop(), FakeTransport()
    throttle = ReadThrottle(loop, transport, FaultInjector(parse_faults([]), None))  # type: ignore[arg-type]
    throttle.consumed(10**9)
    assert not transport.paused and not loop.timers
