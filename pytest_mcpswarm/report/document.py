"""The JSON report document (schema ``mcpswarm/1``): one per run or pytest session.

Every number in a scenario comes from the merged ``StatsSnapshot``: the
percentiles from its merged histogram, the rates from its exact counters.
Extra keys are allowed by the schema; the documented ones never change meaning.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from datetime import UTC, datetime
from typing import Any

from pytest_mcpswarm import __version__
from pytest_mcpswarm.load.controller import RunResult
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.sla import SlaOutcome
from pytest_mcpswarm.stats.histogram import LatencyHistogram

SCHEMA = "mcpswarm/1"
_PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p999", 99.9))


def latency_ms(hist: LatencyHistogram) -> dict[str, float | None]:
    if not hist.total_count:
        empty: dict[str, float | None] = {name: None for name, _ in _PERCENTILES}
        return empty | {"max": None, "mean": None}
    values = hist.percentiles([p for _, p in _PERCENTILES])
    out: dict[str, float | None] = {name: v / 1000 for (name, _), v in zip(_PERCENTILES, values, strict=True)}
    out["max"] = (hist.max_us or 0) / 1000
    out["mean"] = hist.mean() / 1000
    return out


def _method_weights(plan: RunPlan) -> dict[str, float]:
    weights: dict[str, float] = {}
    for spec in plan.methods:
        weights[spec.method] = weights.get(spec.method, 0.0) + spec.weight
    return weights


def _requests(counts: dict[str, Any]) -> dict[str, int]:
    return {k: int(counts[k]) for k in ("scheduled", "sent", "ok", "errors", "timeouts", "not_sent")}


def scenario(
    name: str,
    result: RunResult,
    *,
    profile: str,
    backend: str,
    params: dict[str, Any] | None = None,
    sla: SlaOutcome | None = None,
) -> dict[str, Any]:
    """One entry of ``scenarios``."""
    plan = result.plan
    snap = result.snapshot
    outcomes = snap.outcomes
    seconds = snap.series.elapsed_s or plan.duration_s
    errors_by_type = dict(outcomes.errors_by_type)
    # Unparseable or unmatched replies end no request; they are listed beside the request errors.
    for key, count in result.protocol_events.items():
        errors_by_type[key] = errors_by_type.get(key, 0) + count
    by_method = {
        method: {"requests": _requests(stats.outcomes.to_dict()), "latency_ms": latency_ms(stats.latency)}
        for method, stats in sorted(snap.methods.items())
    }
    scheme = plan.target.split(":", 1)[0]
    return {
        "name": name,
        "profile": profile,
        "transport": {"ws": "websocket", "wss": "websocket", "http": "http", "https": "http"}.get(
            scheme, scheme
        ),
        "target": plan.target,
        "backend": backend,
        "duration_s": seconds,
        "params": {
            "executor": plan.executor,
            "stages": [
                {"duration_s": s.duration_s, "connections": s.connections, "rate": s.rate}
                for s in plan.stages
            ],
            "payload_bytes": plan.payload_bytes,
            "methods": _method_weights(plan),
            "protocol_version": plan.protocol_version,
            "timeout_s": plan.timeout_s,
            "workers": result.workers,
            "ws_newline": plan.ws_newline,
            "offered_rps": plan.ramp.scheduled_count() / plan.duration_s,
        }
        | (params or {}),
        "requests": _requests(outcomes.to_dict()),
        "errors_by_type": errors_by_type,
        "not_sent_by_reason": dict(outcomes.not_sent_by_reason),
        "throughput_rps": (outcomes.ok + outcomes.errors) / seconds if seconds else 0.0,
        "latency_ms": latency_ms(snap.latency),
        "connections": {
            "opened": result.connections.get("opened", 0),
            "failed": result.connections.get("failed", 0),
            "peak": result.connections.get("peak", 0),
            "reconnects": result.connections.get("reconnects", 0),
        },
        "connect_errors": result.connect_errors,
        "by_method": by_method,
        "timeseries": [
            {k: row[k] for k in ("t", "rps", "p50_ms", "p95_ms", "p99_ms", "errors", "connections")}
            for row in snap.series.rows()
        ],
        "sla": sla.to_dict() if sla is not None else None,
        "generator_bound": bool(reasons := result.generator_reasons()),
        "generator": {
            "reasons": reasons,
            "schedule_lag_ms": latency_ms(result.schedule_lag),
            "loop_lag_ms": latency_ms(result.loop_lag),
            "worker_cpu": [round(c, 3) for c in result.worker_cpu],
            "inflight_peak": result.inflight_peak,
            "clock_anomalies": result.clock_anomalies,
        },
        "histogram": snap.latency.encode(),
    }


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def machine_info() -> dict[str, Any]:
    return {
        "node": socket.gethostname(),
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "mcpswarm": __version__,
    }


def commit_info() -> dict[str, Any]:
    return {
        "id": _git("rev-parse", "HEAD"),
        "branch": _git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(_git("status", "--porcelain")),
    }


def document(scenarios: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine_info": machine_info(),
        "commit_info": commit_info(),
        "scenarios": scenarios,
    }
