"""Real reports (a pytest session, ``mcpswarm run``, ``mcpswarm ceiling``) validate against the schema."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_mcpswarm.report.document import SCHEMA
from pytest_mcpswarm.report.schema import PATH, load
from pytest_mcpswarm.server.launch import ServerProcess

#: Each at time-scale 0.005: the warm-up (whole_run), a stress scenario and a peak-phase scenario.
SESSION_TESTS = """
import pytest

@pytest.mark.parametrize("name", ["baseline", "message-bombing", "connection-flood"])
def test_scenario(mcpswarm, name):
    mcpswarm(name)
"""
#: Hooks add keys of their own: the schema must allow them.
HOOKS = """
def pytest_mcpswarm_scenario_result(config, scenario):
    scenario["team"] = {"owner": "perf"}

def pytest_mcpswarm_update_json(config, document):
    document["ci"] = {"run_id": "42"}
"""
SCALES = ("--mcpswarm-time-scale=0.005", "--mcpswarm-load-scale=0.1", "--mcpswarm-workers=1")


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load(), format_checker=jsonschema.FormatChecker())


def problems(doc: dict[str, Any]) -> list[str]:
    return [f"{e.json_path}: {e.message[:200]}" for e in validator().iter_errors(doc)]


def read(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def mcpswarm_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pytest_mcpswarm", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


# -- the schema itself -------------------------------------------------------------------


def _subschemas(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _subschemas(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _subschemas(value, f"{path}/{i}")


def test_the_schema_is_draft_2020_12_and_names_the_document_schema() -> None:
    schema = load()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["schema"]["const"] == SCHEMA
    assert PATH.name == "report.schema.json" and PATH.is_file()


def test_every_field_is_documented_and_extra_keys_are_allowed() -> None:
    schema = load()
    defs = schema["$defs"]
    undocumented, closed = [], []
    for path, node in _subschemas(schema, "#"):
        if node.get("additionalProperties") is False or node.get("unevaluatedProperties") is False:
            closed.append(path)
        for name, prop in (node.get("properties") or {}).items():
            target = defs[prop["$ref"].rsplit("/", 1)[1]] if "$ref" in prop else prop
            if "description" not in prop and "description" not in target:
                undocumented.append(f"{path}/properties/{name}")
    assert closed == [], f"the schema must allow extra keys: {closed}"
    assert undocumented == [], f"fields without a description: {undocumented}"


# -- real reports ------------------------------------------------------------------------


def test_pytest_session_reports_validate_with_compare_attribution_and_hook_keys(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(test_scenarios=SESSION_TESTS)
    project.makeconftest(HOOKS)
    first = project.path / "first.json"
    project.runpytest(*SCALES, "-p", "no:cacheprovider", f"--mcpswarm-json={first}").assert_outcomes(passed=3)
    second = project.path / "second.json"
    project.runpytest(
        *SCALES,
        "-p",
        "no:cacheprovider",
        "-k",
        "baseline",
        f"--mcpswarm-json={second}",
        f"--mcpswarm-compare={first}",
        "--mcpswarm-compare-fail=p99:+100000%",
    ).assert_outcomes(passed=1, deselected=2)

    doc = read(first)
    assert problems(doc) == []
    by_name = {s["name"]: s for s in doc["scenarios"]}
    # The sections the schema describes really are in these reports, so validating means something.
    assert doc["session"]["backend"] == "local" and doc["ci"] == {"run_id": "42"}
    assert "whole_run" in by_name["baseline"] and by_name["baseline"]["team"] == {"owner": "perf"}
    assert "recovery_s" in by_name["message-bombing"]["summary"]
    assert "p95_at_peak_ms" in by_name["connection-flood"]["summary"]
    assert all(s["attribution"]["verdict"] for s in doc["scenarios"])
    assert all(s["sla"]["source"] == "default" for s in doc["scenarios"])

    compared = read(second)
    assert problems(compared) == []
    assert compared["compare"]["scenarios"]["baseline"]["metrics"]["p99"]["tolerance"] == "p99:+100000%"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess() as srv:
        yield srv


@pytest.fixture(scope="module")
def run_report(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real ``mcpswarm run --json`` report, with an SLA verdict."""
    where = tmp_path_factory.mktemp("run")
    done = mcpswarm_cli(
        "run", "--target", server.ws_url, "--profile", "low-load", "--clients", "2", "--duration", "1",
        "--workers", "1", "--sla", "p99<10s", "--json", "run.json", cwd=where,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return read(where / "run.json")


def test_mcpswarm_run_report_validates(run_report: dict[str, Any]) -> None:
    assert run_report["scenarios"][0]["sla"]["passed"] is True
    assert problems(run_report) == []


def test_mcpswarm_ceiling_report_validates(server: ServerProcess, tmp_path: Path) -> None:
    done = mcpswarm_cli(
        "ceiling", "--target", server.ws_url, "--profile", "low-load", "--sla", "p99<1us",
        "--workers", "1", "--step-seconds", "1", "--warmup-seconds", "0", "--max-steps", "1",
        "--start-rate", "20", "--json", "ceiling.json", cwd=tmp_path,
    )  # fmt: skip
    # p99<1us fails at once: no ceiling, exit status 1 (the failing step may be marked generator-bound
    # on a busy machine, and is then not the search's first_fail).
    assert done.returncode == 1, done.stderr
    doc = read(tmp_path / "ceiling.json")
    assert doc["ceiling"]["rps"] is None and doc["ceiling"]["steps"][0]["passed"] is False
    assert problems(doc) == []


def _set(path: tuple[str | int, ...], value: object) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        node: Any = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


def _drop(path: tuple[str | int, ...]) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        node: Any = doc
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return change


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (_set(("scenarios", 0, "requests", "ok"), "12"), "$.scenarios[0].requests.ok"),
        (_set(("scenarios", 0, "latency_ms", "p99"), "2 ms"), "$.scenarios[0].latency_ms.p99"),
        (_set(("scenarios", 0, "generator_bound"), "no"), "$.scenarios[0].generator_bound"),
        (_set(("schema",), "mcpswarm/2"), "$.schema"),
        (_drop(("scenarios", 0, "latency_ms")), "$.scenarios[0]"),
        (_set(("scenarios", 0, "sla", "checks", 0, "op"), "=<"), "$.scenarios[0].sla.checks[0].op"),
    ],
    ids=["count-as-string", "latency-as-string", "bool-as-string", "other-schema", "missing-key", "bad-op"],
)
def test_a_report_with_a_wrong_type_or_a_missing_key_fails(
    run_report: dict[str, Any], change: Callable[[dict[str, Any]], None], where: str
) -> None:
    doc = copy.deepcopy(run_report)
    change(doc)
    found = problems(doc)
    assert found, "the broken report validated"
    assert any(p.startswith(f"{where}:") for p in found), found
