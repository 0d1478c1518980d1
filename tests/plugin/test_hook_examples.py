"""Every example in the hookspec docstrings (and so in docs/HOOKS.md) works in a real session."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from pytest_mcpswarm import docsgen
from pytest_mcpswarm.server.launch import ServerProcess


def test_every_hook_has_an_example_that_compiles() -> None:
    hooks = docsgen.hook_specs()
    assert [fn.__name__ for fn in hooks] == [
        "pytest_mcpswarm_adjust_scenario",
        "pytest_mcpswarm_scenario_result",
        "pytest_mcpswarm_update_json",
    ]
    for fn in hooks:
        example = docsgen.hook_example(fn)
        assert f"def {fn.__name__}(" in example, f"{fn.__name__}: no example in its docstring"
        compile(example, fn.__name__, "exec")


def test_the_examples_run_in_a_session_against_an_external_server(
    project: pytest.Pytester,
    reference_server: Callable[..., ServerProcess],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = reference_server()
    monkeypatch.setenv("SERVER_BUILD", "build-7")
    monkeypatch.setenv("GITHUB_RUN_ID", "1234")
    monkeypatch.delenv("GITHUB_REF", raising=False)
    project.makeconftest("\n\n".join(docsgen.hook_example(fn) for fn in docsgen.hook_specs()))
    project.makepyfile(
        """
        def test_normal(mcpswarm):
            result = mcpswarm("normal", clients=4, duration_s=1)
            assert result["params"]["clients"] == 2 and result["params"]["timeout_s"] == 5
        """
    )
    out = project.path / "report.json"
    result = project.runpytest(
        f"--mcpswarm-target={server.ws_url}", "--mcpswarm-workers=1", f"--mcpswarm-json={out}",
        "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    doc = json.loads(out.read_text())
    assert doc["ci"] == {"run_id": "1234", "ref": None}
    assert doc["scenarios"][0]["server_build"] == "build-7"
