"""The README's first SLA test is this repository's docs/examples/test_first_sla.py, and it works."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_mcpswarm.server.launch import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "test_first_sla.py"


def test_readme_shows_the_example_verbatim() -> None:
    assert EXAMPLE.read_text().strip() in (ROOT / "README.md").read_text()


@pytest.mark.parametrize(("server_args", "outcome"), [((), "passed"), (("--delay-ms", "80"), "failed")])
def test_the_example_passes_on_a_fast_server_and_fails_on_a_slow_one(
    project: pytest.Pytester,
    reference_server: Callable[..., ServerProcess],
    server_args: tuple[str, ...],
    outcome: str,
) -> None:
    server = reference_server(*server_args)
    project.makepyfile(test_first_sla=EXAMPLE.read_text())
    result = project.runpytest(
        f"--mcpswarm-target={server.ws_url}", "--mcpswarm-workers=1", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(**{outcome: 1})
    if outcome == "failed":
        result.stdout.fnmatch_lines(["*p99 < 50ms*"])
