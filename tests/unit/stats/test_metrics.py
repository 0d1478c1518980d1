"""Each metric of the table, on a hand-made aggregate."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pytest_mcpswarm.stats.histogram import LatencyHistogram
from pytest_mcpswarm.stats.metrics import METRICS


@dataclass
class Agg:
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    ok: int = 0
    errors: int = 0
    timeouts: int = 0
    not_sent: int = 0
    seconds: float = 0.0


def test_table_is_complete_and_read_only() -> None:
    assert list(METRICS) == [
        "p50", "p90", "p95", "p99", "p999", "max", "mean",
        "error_rate", "timeout_rate", "rps", "not_sent", "errors", "timeouts",
    ]  # fmt: skip
    assert {m.kind for m in METRICS.values()} == {"latency", "rate", "count"}
    assert [n for n, m in METRICS.items() if m.higher_is_better] == ["rps"]
    with pytest.raises(TypeError):
        METRICS["p1"] = METRICS["p50"]  # type: ignore[index]


def test_values() -> None:
    agg = Agg(ok=90, errors=6, timeouts=4, not_sent=3, seconds=2.0)
    for v in range(1, 1001):
        agg.latency.record(v)
    expect = {
        "p50": 500.0, "p90": 900.0, "p95": 950.0, "p99": 990.0, "p999": 999.0, "max": 1000.0,
        "error_rate": 0.06, "timeout_rate": 0.04, "rps": 48.0,
        "not_sent": 3.0, "errors": 6.0, "timeouts": 4.0,
    }  # fmt: skip
    for name, value in expect.items():
        assert METRICS[name].value(agg) == value, name
    assert METRICS["mean"].value(agg) == pytest.approx(500.5)


def test_undefined_values_are_none() -> None:
    empty = Agg()
    for name in ("p50", "p99", "max", "mean", "error_rate", "timeout_rate", "rps"):
        assert METRICS[name].value(empty) is None, name
    assert METRICS["not_sent"].value(empty) == 0.0
    # Rates are over sent requests: not_sent alone leaves them undefined.
    assert METRICS["error_rate"].value(Agg(not_sent=5, seconds=1)) is None
    assert METRICS["rps"].value(Agg(seconds=1)) == 0.0
