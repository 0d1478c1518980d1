"""The SLA language: parse ``p99<50ms, error_rate<0.1%, p99[10s]<100ms`` and judge a run by it.

Grammar (whitespace anywhere between tokens)::

    sla       := check ("," check)*
    check     := metric [ "[" N "s" "]" ] op number [unit]
    op        := "<" | "<=" | ">" | ">=" | "==" | "!="

- latency metrics (``p50 p90 p95 p99 p999 max mean``) need a unit: ``us``
  (or ``µs``), ``ms`` or ``s``;
- rates (``error_rate timeout_rate``) take ``%`` (``0.1%``) or a bare
  fraction between 0 and 1 (``0.001``);
- counts (``rps not_sent errors timeouts``) take no unit;
- ``metric[Ns]`` checks every N-second window of the run, stepped by 1 s,
  each computed from merged one-second histograms; the worst window is
  reported.  A run shorter than N seconds is one window.

What each metric means is the table in ``stats.metrics`` (``METRICS``,
re-exported here for ``compare``).  Parsing and evaluation are pure.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final, Protocol

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.stats.metrics import METRICS, Metric

__all__ = [
    "LATENCY_UNITS",
    "METRICS",
    "OPERATORS",
    "Check",
    "CheckResult",
    "Metric",
    "ResultView",
    "Sla",
    "SlaOutcome",
    "evaluate",
    "parse_sla",
]

#: Latency unit -> microseconds.
LATENCY_UNITS: Final = {"us": 1, "µs": 1, "ms": 1_000, "s": 1_000_000}
OPERATORS: Final[dict[str, Callable[[float, float], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_FORM: Final = "e.g. 'p99<50ms, error_rate<0.1%, rps>=2400, not_sent==0, p99[10s]<100ms'"

_METRIC_RE: Final = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)")
_WINDOW_RE: Final = re.compile(r"\s*\[([^\]]*)\]")
_WINDOW_BODY_RE: Final = re.compile(r"\s*([0-9]+)\s*s\s*")
_OP_RE: Final = re.compile(r"\s*(<=|>=|==|!=|<|>)")
_VALUE_RE: Final = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-zµ%]*)\s*")


class ResultView(Protocol):
    """What evaluation needs from a run (``stats.StatsSnapshot`` provides it)."""

    def overall(self, metric: str) -> float | None:
        """``metric`` over the whole run, in base units (us, fraction, count); None if undefined."""

    def windows(self, metric: str, width_s: int) -> Sequence[tuple[int, float | None]]:
        """``(start_s, value)`` for every ``width_s``-second window stepped by 1 s."""


@dataclass(frozen=True, slots=True)
class Check:
    """One comparison.  ``threshold`` is in base units; ``unit`` is how the user wrote it."""

    metric: str
    op: str
    threshold: float
    unit: str = ""
    window_s: int | None = None

    @property
    def label(self) -> str:
        return f"{self.metric}[{self.window_s}s]" if self.window_s else self.metric

    def in_unit(self, value: float) -> float:
        """``value`` (base units) converted to the unit the user wrote."""
        if self.unit in LATENCY_UNITS:
            return value / LATENCY_UNITS[self.unit]
        if self.unit == "%":
            return value * 100
        return value

    def show(self, value: float) -> str:
        return f"{self.in_unit(value):.6g}{self.unit}"

    def __str__(self) -> str:
        return f"{self.label}{self.op}{self.show(self.threshold)}"


@dataclass(frozen=True, slots=True)
class Sla:
    checks: tuple[Check, ...]

    def __str__(self) -> str:
        return ", ".join(str(c) for c in self.checks)


def _bad(check_text: str, what: str) -> UsageError:
    return UsageError(f"SLA check {check_text.strip()!r}: {what}", fix=f"write checks like {_FORM}")


def _parse_check(text: str) -> Check:
    pos = 0
    m = _METRIC_RE.match(text, pos)
    if not m:
        raise _bad(text, f"expected a metric name ({', '.join(METRICS)})")
    name = m.group(1).lower()
    if name not in METRICS:
        raise _bad(text, f"unknown metric {m.group(1)!r}; accepted: {', '.join(METRICS)}")
    spec = METRICS[name]
    pos = m.end()

    window_s: int | None = None
    m = _WINDOW_RE.match(text, pos)
    if m:
        body = _WINDOW_BODY_RE.fullmatch(m.group(1))
        if not body or int(body.group(1)) < 1:
            raise _bad(
                text, f"window '[{m.group(1)}]' must be [Ns], N whole seconds >= 1, e.g. p99[10s]<100ms"
            )
        window_s = int(body.group(1))
        pos = m.end()

    m = _OP_RE.match(text, pos)
    if not m:
        rest = text[pos:].strip() or "nothing"
        raise _bad(text, f"expected one of {' '.join(OPERATORS)} after {name!r}, got {rest!r}")
    op = m.group(1)
    pos = m.end()

    m = _VALUE_RE.fullmatch(text, pos)
    if not m:
        rest = text[pos:].strip() or "nothing"
        raise _bad(text, f"expected a non-negative number{_unit_hint(spec)} after {op!r}, got {rest!r}")
    number = Fraction(m.group(1))
    unit = m.group(2).lower() if m.group(2) != "µs" else "µs"
    return Check(name, op, _to_base(text, spec, number, unit), unit, window_s)


def _unit_hint(spec: Metric) -> str:
    return {"latency": " and a unit (us, ms, s)", "rate": " (a fraction, or a percentage with %)"}.get(
        spec.kind, " without a unit"
    )


def _to_base(text: str, spec: Metric, number: Fraction, unit: str) -> float:
    # Fraction keeps "0.1%" exact until the single final rounding to float, so
    # a threshold equals the float a rate of 1/1000 computes to.
    if spec.kind == "latency":
        if unit not in LATENCY_UNITS:
            got = f"unit {unit!r}" if unit else "no unit"
            raise _bad(text, f"latency metric {spec.name!r} needs a unit us, ms or s (e.g. 50ms), got {got}")
        return float(number * LATENCY_UNITS[unit])
    if spec.kind == "rate":
        if unit == "%":
            if number > 100:
                raise _bad(text, f"{spec.name} is at most 100%, got {float(number):g}%")
            return float(number / 100)
        if unit:
            raise _bad(text, f"{spec.name} takes % or a bare fraction, got unit {unit!r}")
        if number > 1:
            raise _bad(text, f"a bare {spec.name} is a fraction 0..1; did you mean {float(number):g}%?")
        return float(number)
    if unit:
        raise _bad(text, f"{spec.name} is a plain number and takes no unit, got {unit!r}")
    return float(number)


def parse_sla(expr: str) -> Sla:
    """Parse an SLA expression; ``UsageError`` names the bad token and the accepted form."""
    if not expr.strip():
        raise UsageError("SLA expression is empty", fix=f"write checks like {_FORM}")
    checks: list[Check] = []
    for n, part in enumerate(expr.split(","), start=1):
        if not part.strip():
            raise UsageError(
                f"SLA {expr!r}: check {n} is empty (stray comma?)", fix=f"write checks like {_FORM}"
            )
        checks.append(_parse_check(part))
    return Sla(tuple(checks))


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: Check
    #: Base units; for a windowed check, the worst window's value.  None: no data.
    actual: float | None
    passed: bool
    #: Windowed checks: start of the worst window, and how many failed of how many.
    worst_window_s: int | None = None
    failed_windows: int = 0
    windows: int = 0

    def to_dict(self) -> dict[str, Any]:
        """``{metric, op, threshold, actual, passed, ...}`` with values in the check's unit."""
        c = self.check
        return {
            "metric": c.label,
            "op": c.op,
            "threshold": c.in_unit(c.threshold),
            "actual": None if self.actual is None else c.in_unit(self.actual),
            "unit": c.unit,
            "passed": self.passed,
            "window_s": c.window_s,
            "worst_window_s": self.worst_window_s,
            "failed_windows": self.failed_windows,
            "windows": self.windows,
        }

    def line(self) -> str:
        c = self.check
        head = f"{'PASS' if self.passed else 'FAIL'} {c.label} {c.op} {c.show(c.threshold)}:"
        if self.actual is None:
            return f"{head} no data (nothing was measured for {c.metric})"
        if c.window_s is None:
            return f"{head} actual {c.show(self.actual)}"
        start = self.worst_window_s or 0
        return (
            f"{head} worst {c.window_s} s window (t={start}..{start + c.window_s} s) "
            f"{c.show(self.actual)}, {self.failed_windows} of {self.windows} windows failed"
        )


@dataclass(frozen=True, slots=True)
class SlaOutcome:
    passed: bool
    results: tuple[CheckResult, ...]
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [r.to_dict() for r in self.results], "message": self.message}


def _worst(check: Check, values: list[tuple[int, float]]) -> tuple[int, float]:
    if check.op in ("<", "<="):
        return max(values, key=lambda sv: sv[1])
    if check.op in (">", ">="):
        return min(values, key=lambda sv: sv[1])
    test = OPERATORS[check.op]
    failing = [sv for sv in values if not test(sv[1], check.threshold)]
    if check.op == "==":
        # The window furthest from the required value.
        return max(failing or values, key=lambda sv: abs(sv[1] - check.threshold))
    return (failing or values)[0]


def _evaluate_check(check: Check, view: ResultView) -> CheckResult:
    test = OPERATORS[check.op]
    if check.window_s is None:
        actual = view.overall(check.metric)
        return CheckResult(check, actual, actual is not None and test(actual, check.threshold))
    # Windows without a value (no samples, nothing sent) have nothing to judge.
    values = [(s, v) for s, v in view.windows(check.metric, check.window_s) if v is not None]
    if not values:
        return CheckResult(check, None, False)
    failed = sum(1 for _, v in values if not test(v, check.threshold))
    start, worst = _worst(check, values)
    return CheckResult(check, worst, failed == 0, start, failed, len(values))


def evaluate(sla: Sla, view: ResultView) -> SlaOutcome:
    """Judge a run: every check, with its threshold and actual value, and a message listing them all."""
    results = tuple(_evaluate_check(c, view) for c in sla.checks)
    failed = sum(1 for r in results if not r.passed)
    head = (
        f"SLA passed ({len(results)} checks)"
        if not failed
        else f"SLA failed ({failed} of {len(results)} checks)"
    )
    message = "\n".join([head, *(f"  {r.line()}" for r in results)])
    return SlaOutcome(failed == 0, results, message)
