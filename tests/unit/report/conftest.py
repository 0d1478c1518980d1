"""A scenario dict in the ``mcpswarm/1`` shape, built from known latencies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_mcpswarm.stats.histogram import LatencyHistogram

Factory = Callable[..., dict[str, Any]]


def make_scenario(
    name: str = "baseline",
    *,
    latencies_us: list[int] | None = None,
    sla: dict[str, Any] | None = None,
    errors: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    hist = LatencyHistogram()
    values = latencies_us if latencies_us is not None else list(range(1000, 101_000, 100))  # 1..101 ms
    hist.record_many(values)
    rows: list[dict[str, Any]] = [
        {"t": t, "rps": 100.0 + 10 * t, "p50_ms": 1.0 + t, "p95_ms": 5.0 + t, "p99_ms": 9.0 + 2 * t,
         "errors": errors if t == 2 else 0, "connections": 5}
        for t in range(5)
    ]  # fmt: skip
    rows.append({"t": 5, "rps": 0.0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "errors": 0,
                 "connections": 0})  # fmt: skip
    p = hist.percentiles([50, 99])
    scenario: dict[str, Any] = {
        "name": name,
        "profile": "normal",
        "transport": "websocket",
        "target": "ws://127.0.0.1:9/mcp/ws",
        "backend": "local",
        "duration_s": 5.0,
        "params": {
            "offered_rps": 500.0,
            "stages": [{"duration_s": 5.0, "connections": 5, "rate": 100.0}],
            "workers": 2,
            "protocol_version": "2025-11-25",
        },
        "requests": {
            "scheduled": 1000,
            "sent": 1000,
            "ok": 990 - errors,
            "errors": errors,
            "timeouts": 10,
            "not_sent": 0,
        },
        "errors_by_type": {"mcp_error": errors} if errors else {},
        "not_sent_by_reason": {},
        "throughput_rps": 498.0,
        "latency_ms": {
            "p50": p[0] / 1000,
            "p90": None,
            "p95": None,
            "p99": p[1] / 1000,
            "p999": None,
            "max": (hist.max_us or 0) / 1000,
            "mean": hist.mean() / 1000,
        },
        "connections": {"opened": 5, "failed": 0, "peak": 5, "reconnects": 0},
        "connect_errors": {},
        "timeseries": rows,
        "sla": sla,
        "generator": {"schedule_lag_ms": {"p99": 0.5}},
        "histogram": hist.encode(),
    }
    scenario.update(extra)
    return scenario


def check(
    metric: str, op: str, threshold: float, actual: float | None, unit: str, *, passed: bool, **window: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {"metric": metric, "op": op, "threshold": threshold, "actual": actual,
                           "unit": unit, "passed": passed, "window_s": None, "worst_window_s": None,
                           "failed_windows": 0, "windows": 0}  # fmt: skip
    out.update(window)
    return out


@pytest.fixture
def scenario() -> Factory:
    return make_scenario


@pytest.fixture
def sla_check() -> Callable[..., dict[str, Any]]:
    return check
