"""Saved runs and the regression gate: ``--mcpswarm-save``, ``-compare`` and ``-compare-fail``.

Runs are stored as ``.mcpswarm/<machine-id>/NNNN_<name>.json`` (the session's
JSON report, schema ``mcpswarm/1``).  A comparison matches scenarios by name
and reads every metric from the same table the SLA language uses
(``stats.metrics.METRICS``).  A tolerance is written in the metric's *bad*
direction::

    p99:+10%          p99 may grow by 10 % of the baseline's
    p50:+2ms          p50 may grow by 2 ms
    rps:-5%           throughput may drop by 5 %
    error_rate:+0.1pp the error rate may grow by 0.1 percentage points

Latency takes ``%`` or ``us``/``ms``/``s``; rates take ``%`` (relative) or
``pp``; counts (``rps``, ``not_sent``, ...) take ``%`` or a bare number.
Everything except the file I/O at the edges is pure.
"""

from __future__ import annotations

import platform
import re
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import orjson

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.report.jsonfile import write_json
from pytest_mcpswarm.sla import LATENCY_UNITS
from pytest_mcpswarm.stats.metrics import METRICS

STORAGE: Final = ".mcpswarm"
_ITEM_RE: Final = re.compile(
    r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([+-]?)\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-zµ%]*)\s*"
)
_FILE_RE: Final = re.compile(r"([0-9]{4})_(.+)\.json")
_FORM: Final = "e.g. 'p99:+10%, p50:+2ms, rps:-5%, error_rate:+0.1pp'"
#: Shown in the terminal for every scenario, besides the gated metrics.
SHOWN: Final = ("p50", "p99", "rps", "error_rate")


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far ``metric`` may move in its bad direction before it is a regression."""

    metric: str
    #: A fraction of the baseline (``relative``) or an amount in base units (us, fraction, count).
    amount: float
    relative: bool
    text: str

    @property
    def worse_is_lower(self) -> bool:
        return METRICS[self.metric].higher_is_better

    def limit(self, baseline: float) -> float:
        """The worst acceptable current value."""
        step = abs(baseline) * self.amount if self.relative else self.amount
        return baseline - step if self.worse_is_lower else baseline + step

    def regressed(self, baseline: float, current: float) -> bool:
        limit = self.limit(baseline)
        return current < limit if self.worse_is_lower else current > limit


def _bad(item: str, what: str) -> UsageError:
    return UsageError(f"compare-fail item {item.strip()!r}: {what}", fix=f"write tolerances like {_FORM}")


def _parse_item(item: str) -> Tolerance:
    m = _ITEM_RE.fullmatch(item)
    if not m:
        raise _bad(item, "expected METRIC:±AMOUNT[UNIT]")
    metric, sign, number, unit = m.group(1).lower(), m.group(2), Fraction(m.group(3)), m.group(4).lower()
    if metric not in METRICS:
        raise _bad(item, f"unknown metric {m.group(1)!r}; accepted: {', '.join(METRICS)}")
    spec = METRICS[metric]
    bad_sign = "-" if spec.higher_is_better else "+"
    if sign and sign != bad_sign:
        direction = "drops" if spec.higher_is_better else "rises"
        fixed = f"{metric}:{bad_sign}{m.group(3)}{unit}"
        raise _bad(item, f"{metric} regresses when it {direction}; write {fixed}")
    text = f"{metric}:{bad_sign}{m.group(3)}{m.group(4)}"
    if unit == "%":
        return Tolerance(metric, float(number / 100), True, text)
    if spec.kind == "latency":
        if unit not in LATENCY_UNITS:
            raise _bad(item, f"{metric} takes % or a latency unit us, ms, s, got {unit or 'no unit'!r}")
        return Tolerance(metric, float(number * LATENCY_UNITS[unit]), False, text)
    if spec.kind == "rate":
        if unit != "pp":
            got = unit or "no unit"
            raise _bad(item, f"{metric} takes % (relative) or pp (percentage points), got {got!r}")
        return Tolerance(metric, float(number / 100), False, text)
    if unit:
        raise _bad(item, f"{metric} takes % or a bare number, got unit {unit!r}")
    return Tolerance(metric, float(number), False, text)


def parse_compare_fail(expr: str) -> tuple[Tolerance, ...]:
    """Parse ``'p99:+10%, rps:-5%'``; ``UsageError`` names the bad item and the accepted form."""
    if not expr.strip():
        raise UsageError("compare-fail expression is empty", fix=f"write tolerances like {_FORM}")
    items = expr.split(",")
    if any(not item.strip() for item in items):
        raise UsageError(f"compare-fail {expr!r} has an empty item (stray comma?)", fix=f"write {_FORM}")
    return tuple(_parse_item(item) for item in items)


# -- values --------------------------------------------------------------------------


def metric_values(scenario: dict[str, Any]) -> dict[str, float | None]:
    """Every ``METRICS`` value of a report scenario, in base units (us, fraction, count).

    Scenarios written by the plugin carry them as ``metrics`` (steady state,
    warm-up excluded); for other mcpswarm/1 documents they are derived from
    the schema's keys.
    """
    if isinstance(scenario.get("metrics"), dict):
        return {k: (None if v is None else float(v)) for k, v in scenario["metrics"].items()}
    out: dict[str, float | None] = {}
    latency = scenario.get("latency_ms") or {}
    for name, spec in METRICS.items():
        if spec.kind == "latency":
            value = latency.get(name)
            out[name] = None if value is None else float(value) * 1000
    req = scenario.get("requests") or {}
    sent = sum(int(req.get(k, 0)) for k in ("ok", "errors", "timeouts"))
    out["error_rate"] = int(req.get("errors", 0)) / sent if sent else None
    out["timeout_rate"] = int(req.get("timeouts", 0)) / sent if sent else None
    out["rps"] = float(scenario.get("throughput_rps", 0.0))
    for name in ("not_sent", "errors", "timeouts"):
        out[name] = float(req.get(name, 0))
    return out


def display(metric: str, value: float | None) -> tuple[float | None, str]:
    """A base-unit value in the unit people read it in: ms, %, or as is."""
    kind = METRICS[metric].kind
    if value is None:
        return None, {"latency": "ms", "rate": "%"}.get(kind, "")
    if kind == "latency":
        return value / 1000, "ms"
    if kind == "rate":
        return value * 100, "%"
    return value, ""


def compare_scenario(
    name: str,
    current: dict[str, Any],
    baseline: dict[str, Any] | None,
    tolerances: tuple[Tolerance, ...] = (),
) -> dict[str, Any]:
    """Deltas of one scenario against its baseline; ``regressions`` lists what the gate rejects."""
    if baseline is None:
        return {"name": name, "missing": True, "params_differ": False, "metrics": {}, "regressions": []}
    now, then = metric_values(current), metric_values(baseline)
    gated = {t.metric: t for t in tolerances}
    metrics: dict[str, Any] = {}
    regressions: list[str] = []
    for metric in dict.fromkeys([*SHOWN, *gated]):
        cur, base = now.get(metric), then.get(metric)
        entry: dict[str, Any] = {"baseline": display(metric, base)[0], "current": display(metric, cur)[0]}
        entry["unit"] = display(metric, cur)[1]
        entry["delta"] = None if cur is None or base is None else display(metric, cur - base)[0]
        entry["delta_pct"] = None if cur is None or not base else (cur - base) / abs(base) * 100
        tol = gated.get(metric)
        entry["tolerance"] = tol.text if tol else None
        entry["limit"] = None
        entry["regressed"] = False
        if tol is not None and base is not None:
            entry["limit"] = display(metric, tol.limit(base))[0]
            # A metric that became undefined (no successful request left) is a regression too.
            entry["regressed"] = cur is None or tol.regressed(base, cur)
        if entry["regressed"]:
            regressions.append(f"{name}: {metric} {_show(entry)} (allowed {tol.text if tol else ''})")
        metrics[metric] = entry
    return {
        "name": name,
        "missing": False,
        "params_differ": current.get("params") != baseline.get("params"),
        "metrics": metrics,
        "regressions": regressions,
    }


def _num(value: float | None, unit: str) -> str:
    return "—" if value is None else f"{value:.4g}{unit}"


def _show(entry: dict[str, Any]) -> str:
    unit = entry["unit"]
    pct = entry["delta_pct"]
    delta = "" if pct is None else f" ({pct:+.1f}%)"
    return f"{_num(entry['baseline'], unit)} -> {_num(entry['current'], unit)}{delta}"


def terminal_lines(comparison: dict[str, Any]) -> list[str]:
    """The comparison as lines for the terminal summary."""
    base = comparison["baseline"]
    lines = [f"baseline: {base['path']} ({base.get('created') or 'unknown date'}, commit "
             f"{(base.get('commit') or 'unknown')[:12]})"]  # fmt: skip
    if comparison.get("fail"):
        lines.append(f"regression gate: {comparison['fail']}")
    for name, scen in comparison["scenarios"].items():
        if scen["missing"]:
            lines.append(f"  {name}: not in the baseline")
            continue
        note = "  (parameters differ from the baseline's)" if scen["params_differ"] else ""
        lines.append(f"  {name}:{note}")
        for metric, entry in scen["metrics"].items():
            mark = "REGRESSION" if entry["regressed"] else ("ok" if entry["tolerance"] else "")
            gate = f" [{entry['tolerance']}]" if entry["tolerance"] else ""
            lines.append(f"    {metric:<11} {_show(entry)}{gate} {mark}".rstrip())
    return lines


# -- storage ---------------------------------------------------------------------------


def machine_id() -> str:
    """Runs are only comparable on like machines: ``Linux-CPython-3.11-64bit``."""
    major, minor, _ = platform.python_version_tuple()
    bits = struct.calcsize("P") * 8
    return f"{platform.system()}-{platform.python_implementation()}-{major}.{minor}-{bits}bit"


def storage_dir(root: Path) -> Path:
    return root / STORAGE / machine_id()


def saved_runs(root: Path) -> list[Path]:
    """Saved runs of this machine id, oldest first."""
    folder = storage_dir(root)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _FILE_RE.fullmatch(p.name))


def save(root: Path, name: str, doc: dict[str, Any]) -> Path:
    """Write ``doc`` as the next ``NNNN_<name>.json``."""
    runs = saved_runs(root)
    number = int(_FILE_RE.fullmatch(runs[-1].name).group(1)) + 1 if runs else 1  # type: ignore[union-attr]
    path = storage_dir(root) / f"{number:04d}_{name}.json"
    return write_json(path, doc)


def find_baseline(root: Path, spec: str, cwd: Path | None = None) -> Path:
    """The file ``--mcpswarm-compare SPEC`` means: a path, ``last``, ``NNNN`` or a saved NAME (newest)."""
    candidate = (cwd or Path.cwd()) / spec
    if candidate.is_file():
        return candidate
    runs = saved_runs(root)
    if spec == "last":
        matches = runs
    elif spec.isdigit():
        matches = [p for p in runs if int(p.name[:4]) == int(spec)]
    else:
        matches = [p for p in runs if _FILE_RE.fullmatch(p.name).group(2) == spec]  # type: ignore[union-attr]
    if matches:
        return matches[-1]
    listing = ", ".join(p.name for p in runs[-10:]) or "none yet"
    raise UsageError(
        f"--mcpswarm-compare {spec!r}: no such file, and no saved run of that name in "
        f"{storage_dir(root)} (saved: {listing})",
        fix="save a baseline first with --mcpswarm-save NAME, or give the path of a JSON report",
    )


def load(path: Path) -> dict[str, Any]:
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise UsageError(f"cannot read baseline {str(path)!r}: {exc}") from None
    if (
        not isinstance(doc, dict)
        or doc.get("schema") != "mcpswarm/1"
        or not isinstance(doc.get("scenarios"), list)
    ):
        raise UsageError(f"baseline {str(path)!r} is not an mcpswarm/1 JSON report")
    return doc


class Comparison:
    """A session's comparison with one baseline, filled in as scenarios finish."""

    def __init__(self, path: Path, baseline: dict[str, Any], fail: str | None) -> None:
        self.baseline = baseline
        self.tolerances = parse_compare_fail(fail) if fail else ()
        self.by_name = {str(s.get("name")): s for s in baseline["scenarios"]}
        commit = baseline.get("commit_info") or {}
        self.data: dict[str, Any] = {
            "baseline": {"path": str(path), "created": baseline.get("created"), "commit": commit.get("id")},
            "fail": fail,
            "scenarios": {},
            "regressions": [],
        }

    def add(self, scenario: dict[str, Any]) -> dict[str, Any]:
        name = str(scenario["name"])
        result = compare_scenario(name, scenario, self.by_name.get(name), self.tolerances)
        self.data["scenarios"][name] = result
        self.data["regressions"].extend(result["regressions"])
        return result

    @property
    def regressions(self) -> list[str]:
        regressions: list[str] = self.data["regressions"]
        return regressions
