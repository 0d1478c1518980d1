"""One object per pytest session: the scenario results, the baseline comparison, the report files.

Built once in ``pytest_configure`` from the frozen ``Settings`` and kept in
``config.stash[SESSION_KEY]`` (re-exported as ``pytest_mcpswarm.plugin.SESSION_KEY``);
each test's own scenario dicts are also in ``item.stash[SCENARIO_KEY]``.
Other plugins (the pytest-html integration) read ``.scenarios`` (the JSON
scenario dicts, in the order they ran) and ``.compare`` (the comparison with
``--mcpswarm-compare``'s baseline, or None).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_mcpswarm import compare as compare_mod
from pytest_mcpswarm.backends import Backend, get_backend
from pytest_mcpswarm.options import Settings
from pytest_mcpswarm.report import document
from pytest_mcpswarm.report.jsonfile import write_json
from pytest_mcpswarm.report.verdict import fmt_number


class McpSwarmSession:
    def __init__(self, settings: Settings, *, root: Path, cwd: Path) -> None:
        self.settings = settings
        self.root = root
        #: The JSON scenario dicts (schema mcpswarm/1), in the order they ran.
        self.scenarios: list[dict[str, Any]] = []
        #: Chosen and configured now, so a bad choice is a usage error; started by ``mcpswarm_stack``.
        self.backend: Backend = get_backend(settings)
        self.stack: dict[str, Any] | None = None
        self.kept_stack: dict[str, Any] | None = None
        self.written: list[tuple[str, Path]] = []
        self.comparison: compare_mod.Comparison | None = None
        if settings.compare:
            path = compare_mod.find_baseline(root, settings.compare, cwd)
            self.comparison = compare_mod.Comparison(path, compare_mod.load(path), settings.compare_fail)

    @property
    def compare(self) -> dict[str, Any] | None:
        """``{"baseline": {...}, "fail": EXPR, "scenarios": {name: {...}}, "regressions": [...]}``."""
        return self.comparison.data if self.comparison is not None else None

    @property
    def regressions(self) -> list[str]:
        return self.comparison.regressions if self.comparison is not None else []

    def unique_name(self, name: str) -> str:
        """``name``, or ``name#2``, ``name#3``... when a scenario of that name already ran."""
        taken = {s["name"] for s in self.scenarios}
        if name not in taken:
            return name
        n = 2
        while f"{name}#{n}" in taken:
            n += 1
        return f"{name}#{n}"

    def record(self, scenario: dict[str, Any]) -> None:
        self.scenarios.append(scenario)
        if self.comparison is not None:
            self.comparison.add(scenario)

    def document(self) -> dict[str, Any]:
        doc = document.document(self.scenarios)
        s = self.settings
        doc["session"] = {
            "backend": s.backend,
            "stack": self.stack,
            "time_scale": s.time_scale,
            "load_scale": s.load_scale,
            "workers": s.workers,
            # What ran, as the backend reports it (swarm: the stack file's count unless set).
            "server_replicas": (self.stack or {}).get("server_replicas", s.server_replicas),
            "transport": s.transport,
            "overrides": dict(s.overrides),
            "slas": dict(s.slas),
        }
        if self.compare is not None:
            doc["compare"] = self.compare
        return doc

    def finish(self, update_json: Callable[[dict[str, Any]], None]) -> None:
        """Write ``--mcpswarm-json`` and ``--mcpswarm-save`` (only if a scenario ran)."""
        if not self.scenarios or not (self.settings.json or self.settings.save):
            return
        doc = self.document()
        update_json(doc)
        if self.settings.json:
            self.written.append(("JSON report", write_json(self.settings.json, doc)))
        if self.settings.save:
            self.written.append(("saved run", compare_mod.save(self.root, self.settings.save, doc)))

    def summary_lines(self) -> list[str]:
        lines: list[str] = []
        for s in self.scenarios:
            lat = s["latency_ms"]
            sla = s.get("sla")
            verdict = "no SLA" if not sla else ("SLA passed" if sla["passed"] else "SLA FAILED")
            p50 = "—" if lat["p50"] is None else f"{lat['p50']:.2f}"
            p99 = "—" if lat["p99"] is None else f"{lat['p99']:.2f}"
            err = s["summary"].get("error_rate_pct")
            if s.get("generator_bound"):
                verdict += "  GENERATOR-BOUND"
            lines.append(
                f"{s['name']:<18} {s['throughput_rps']:>10.1f} rps  p50 {p50:>8} ms  p99 {p99:>8} ms  "
                f"errors {'—' if err is None else f'{err:.3g}%':>7}  {verdict}"
            )
            extra = {k: v for k, v in s["summary"].items() if k not in ("throughput_rps", "error_rate_pct")}
            if extra:
                lines.append("    " + ", ".join(f"{k}={_fmt(v)}" for k, v in extra.items()))
            if s.get("generator_bound"):
                reasons = "; ".join(s["generator"]["reasons"])
                lines.append(f"    the load generator was the bottleneck: {reasons}")
            if s.get("attribution"):
                lines.append(f"    {s['attribution']['line']}")
        return lines


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return fmt_number(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    return "—" if value is None else str(value)


SESSION_KEY = pytest.StashKey[McpSwarmSession]()
#: On each test item: the scenario dicts that test ran, in order (for per-row report extras).
SCENARIO_KEY = pytest.StashKey[list[dict[str, Any]]]()
