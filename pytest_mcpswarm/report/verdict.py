"""What a reader wants first about each scenario: did it pass, why not, and can the numbers be trusted.

Pure functions from ``mcpswarm/1`` scenario dicts (and the optional baseline
comparison) to small records the HTML layer lays out.  Nothing here formats
HTML.

The baseline comparison (``compare``, as ``compare.Comparison.data`` builds it)::

    {"baseline": {"path": ..., "created": ..., "commit": ...}, "fail": EXPR,
     "scenarios": {SCENARIO: {"missing": false, "params_differ": false,
                              "metrics": {METRIC: {"baseline": 10.0, "current": 12.0,
                                                   "delta": 2.0, "delta_pct": 20.0, "unit": "ms",
                                                   "tolerance": "+10%", "regressed": true}}}}}

A scenario's ``metrics`` may also be a list of entries with a ``"metric"``
key.  Only ``baseline`` and ``current`` are required; the delta is computed
when absent.  What cannot be read is shown raw by the HTML, never guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["PASS", "FAIL", "NO SLA"]


@dataclass(frozen=True, slots=True)
class Delta:
    metric: str
    baseline: float
    current: float
    delta: float
    delta_pct: float | None
    unit: str
    #: True: past the regression gate; False: within it; None: no gate on this metric.
    regressed: bool | None
    #: The gate, e.g. "+10%" (None: shown, not gated).
    tolerance: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    name: str
    status: Status
    #: One line per failed SLA check (or why there is no verdict).
    reasons: tuple[str, ...]
    checks_total: int
    generator_bound: bool
    #: False when the run carries no ``generator_bound`` verdict at all (older runs).
    generator_checked: bool
    generator_note: str | None
    target: str
    backend: str
    profile: str
    rps: float | None
    offered_rps: float | None
    p50_ms: float | None
    p99_ms: float | None
    error_rate: float | None
    timeouts: int
    deltas: tuple[Delta, ...]
    #: The comparison's note on this scenario: "not in the baseline", "parameters differ...", or None.
    baseline_note: str | None = None
    #: Bottleneck attribution: what saturated first ("server CPU", "none", ...) and why; None if not run.
    bottleneck: str | None = None
    bottleneck_why: str | None = None


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1:
        return f"{value:.3f} ms"
    if value < 100:
        return f"{value:.1f} ms"
    return f"{value:,.0f} ms"


def fmt_rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} req/s"


def fmt_number(value: float) -> str:
    """Plain digits for what a reader compares by eye: 13,400 rather than 1.34e+04."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def fmt_pct(fraction: float | None) -> str:
    return "—" if fraction is None else f"{fraction * 100:.2f}%"


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def check_line(check: Mapping[str, Any]) -> str:
    """``p99 < 50ms: actual 111.167ms`` (the check's own unit), windowed checks with their worst window."""
    unit = check.get("unit") or ""
    head = f"{check.get('metric')} {check.get('op')} {_num(check.get('threshold'))}{unit}"
    actual = check.get("actual")
    if actual is None:
        return f"{head}: no data"
    window = check.get("window_s")
    if window:
        start = check.get("worst_window_s") or 0
        return (
            f"{head}: worst {window} s window (t={start}–{start + window} s) {_num(actual)}{unit}, "
            f"{check.get('failed_windows', 0)} of {check.get('windows', 0)} windows failed"
        )
    return f"{head}: actual {_num(actual)}{unit}"


def error_rate(scenario: Mapping[str, Any]) -> float | None:
    """errors / (ok + errors + timeouts), as ``stats.metrics`` defines it."""
    req = scenario.get("requests") or {}
    sent = int(req.get("ok", 0)) + int(req.get("errors", 0)) + int(req.get("timeouts", 0))
    return int(req.get("errors", 0)) / sent if sent else None


def generator_note(scenario: Mapping[str, Any]) -> str | None:
    """Evidence for a generator-bound mark, or the schedule lag as a health figure."""
    gen = scenario.get("generator") or {}
    reason = gen.get("reason") or gen.get("reasons")
    if isinstance(reason, list):
        reason = "; ".join(str(r) for r in reason)
    lag = (gen.get("schedule_lag_ms") or {}).get("p99")
    lag_text = f"schedule lag p99 {fmt_ms(lag)}" if isinstance(lag, int | float) else None
    parts = [str(p) for p in (reason, lag_text) if p]
    return "; ".join(parts) or None


def _delta(metric: str, entry: Mapping[str, Any]) -> Delta | None:
    base, cur = entry.get("baseline"), entry.get("current")
    if not isinstance(base, int | float) or not isinstance(cur, int | float):
        return None
    delta = entry.get("delta")
    pct = entry.get("delta_pct")
    regressed = entry.get("regressed")
    tolerance = entry.get("tolerance")
    if "tolerance" in entry and tolerance is None and not regressed:
        regressed = None  # shown for information: no gate applies to this metric
    return Delta(
        metric=str(entry.get("metric", metric)),
        baseline=float(base),
        current=float(cur),
        delta=float(delta) if isinstance(delta, int | float) else float(cur) - float(base),
        delta_pct=float(pct)
        if isinstance(pct, int | float)
        else ((float(cur) - float(base)) / float(base) * 100 if base else None),
        unit=str(entry.get("unit") or ""),
        regressed=regressed if isinstance(regressed, bool) else None,
        tolerance=str(tolerance) if tolerance is not None else None,
    )


def deltas(compare: Mapping[str, Any] | None, name: str) -> tuple[Delta, ...]:
    """This scenario's baseline deltas, in the shape the module docstring describes."""
    if not compare:
        return ()
    per = (compare.get("scenarios") or {}).get(name)
    if isinstance(per, Mapping) and "metrics" in per:
        per = per["metrics"]
    out: list[Delta | None] = []
    if isinstance(per, Mapping):
        out = [_delta(str(m), e) for m, e in per.items() if isinstance(e, Mapping)]
    elif isinstance(per, list):
        out = [_delta(str(e.get("metric", "?")), e) for e in per if isinstance(e, Mapping)]
    return tuple(d for d in out if d is not None)


def baseline_note(compare: Mapping[str, Any] | None, name: str) -> str | None:
    if not compare:
        return None
    per = (compare.get("scenarios") or {}).get(name)
    if per is None or (isinstance(per, Mapping) and per.get("missing")):
        return "not in the baseline"
    if isinstance(per, Mapping) and per.get("params_differ"):
        return "parameters differ from the baseline's"
    return None


def baseline_label(compare: Mapping[str, Any]) -> str:
    """``path (created, commit abc123)`` of the baseline, or what the comparison calls it."""
    base = compare.get("baseline")
    if not isinstance(base, Mapping):
        return str(base) if base else "the baseline"
    extra = [str(base["created"])] if base.get("created") else []
    if base.get("commit"):
        extra.append(f"commit {str(base['commit'])[:10]}")
    label = str(base.get("path") or "the baseline")
    return f"{label} ({', '.join(extra)})" if extra else label


def bottleneck(scenario: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The attribution's label and its reason: ``("none", "no resource reached ...")``."""
    att = scenario.get("attribution")
    if not isinstance(att, Mapping) or not att.get("label"):
        return None, None
    line = str(att.get("line") or "")
    why = line[line.find("(") + 1 : line.rfind(")")] if "(" in line and line.endswith(")") else None
    return str(att["label"]), why or None


def verdict(scenario: Mapping[str, Any], compare: Mapping[str, Any] | None = None) -> Verdict:
    name = str(scenario.get("name", "?"))
    sla = scenario.get("sla")
    checks: list[Mapping[str, Any]] = (sla or {}).get("checks") or []
    bound = bool(scenario.get("generator_bound"))
    reasons: list[str]
    status: Status
    if sla is None:
        status, reasons = "NO SLA", ["no SLA was set for this scenario"]
    elif sla.get("passed"):
        passed = "the SLA check passed" if len(checks) == 1 else f"all {len(checks)} SLA checks passed"
        status, reasons = "PASS", [passed]
    else:
        status = "FAIL"
        reasons = [check_line(c) for c in checks if not c.get("passed")] or [
            str(sla.get("message") or "SLA failed")
        ]
    if bound:
        reasons.insert(
            0, "load generator saturated: these numbers show the generator's limit, not the server's"
        )
    lat = scenario.get("latency_ms") or {}
    params = scenario.get("params") or {}
    offered = params.get("offered_rps")
    neck, neck_why = bottleneck(scenario)
    return Verdict(
        name=name,
        status=status,
        reasons=tuple(reasons),
        checks_total=len(checks),
        generator_bound=bound,
        generator_checked="generator_bound" in scenario,
        generator_note=generator_note(scenario),
        target=str(scenario.get("target", "")),
        backend=str(scenario.get("backend", "")),
        profile=str(scenario.get("profile", "")),
        rps=scenario.get("throughput_rps"),
        offered_rps=float(offered) if isinstance(offered, int | float) else None,
        p50_ms=lat.get("p50"),
        p99_ms=lat.get("p99"),
        error_rate=error_rate(scenario),
        timeouts=int((scenario.get("requests") or {}).get("timeouts", 0)),
        deltas=deltas(compare, name),
        baseline_note=baseline_note(compare, name),
        bottleneck=neck,
        bottleneck_why=neck_why,
    )
