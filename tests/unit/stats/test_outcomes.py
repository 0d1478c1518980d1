"""The counters model and its accounting equation."""

from __future__ import annotations

import orjson
import pytest

from pytest_mcpswarm.stats.histogram import LatencyHistogram
from pytest_mcpswarm.stats.outcomes import MethodStats, Outcomes, error_key


def balanced() -> Outcomes:
    o = Outcomes(scheduled=10, sent=8, ok=5)
    o.add_error("jsonrpc:-32601", 2)
    o.add_error("transport:closed")
    o.timeouts = 1
    o.add_not_sent("not_connected")
    return o


def test_error_key() -> None:
    assert error_key("jsonrpc", -32601) == "jsonrpc:-32601"
    assert error_key("protocol", "malformed") == "protocol:malformed"
    with pytest.raises(ValueError, match="family:detail"):
        error_key("", "closed")
    with pytest.raises(ValueError, match="family:detail"):
        Outcomes().add_error("closed")
    with pytest.raises(ValueError, match="family:detail"):
        Outcomes().add_error("transport:")


def test_breakdowns_follow_the_totals() -> None:
    o = balanced()
    assert o.errors == 3 and o.errors_by_type == {"jsonrpc:-32601": 2, "transport:closed": 1}
    assert o.not_sent == 1 and o.not_sent_by_reason == {"not_connected": 1}
    assert o.finished == 10
    assert o.accounting_ok() and o.accounting_problems() == []


def _make_negative(o: Outcomes) -> None:
    o.timeouts -= 2  # -1 ...
    o.ok += 2  # ... with the sum still balanced, so only the sign is wrong


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda o: setattr(o, "scheduled", 11), "scheduled (11) != ok + errors + timeouts + not_sent"),
        (lambda o: setattr(o, "ok", 6), "scheduled (10) != ok + errors + timeouts + not_sent"),
        (
            lambda o: o.errors_by_type.update({"protocol:malformed": 1}),
            "errors_by_type sums to 4, errors is 3",
        ),
        (lambda o: o.not_sent_by_reason.clear(), "not_sent_by_reason sums to 0, not_sent is 1"),
        (lambda o: setattr(o, "sent", 10), "sent (10) > scheduled - not_sent (9)"),
        (_make_negative, "negative counters: timeouts"),
    ],
)
def test_each_broken_equation_is_named(change: object, problem: str) -> None:
    o = balanced()
    change(o)  # type: ignore[operator]
    assert not o.accounting_ok()
    assert any(problem in p for p in o.accounting_problems()), o.accounting_problems()


def test_add_and_total_sum_everything() -> None:
    total = Outcomes.total([balanced(), balanced(), Outcomes()])
    assert (total.scheduled, total.sent, total.ok, total.errors, total.timeouts, total.not_sent) == (
        20,
        16,
        10,
        6,
        2,
        2,
    )
    assert total.errors_by_type == {"jsonrpc:-32601": 4, "transport:closed": 2}
    assert total.not_sent_by_reason == {"not_connected": 2}
    assert total.accounting_ok()


def test_to_dict_round_trips_through_json() -> None:
    o = balanced()
    assert Outcomes.from_dict(orjson.loads(orjson.dumps(o.to_dict()))) == o
    stats = MethodStats(o, LatencyHistogram())
    stats.latency.record(1234)
    back = MethodStats.from_dict(orjson.loads(orjson.dumps(stats.to_dict())))
    assert back == stats
    back.add(stats)
    assert back.outcomes.ok == 10 and back.latency.total_count == 2
