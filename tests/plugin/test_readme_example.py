"""The README's first SLA test is this repository's docs/examples/test_first_sla.py, and it can fail.

That it passes on a fast server, run with the README's own command line, is checked by the
runnable README block in tests/integration/test_docs_runnable.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_mcpswarm.server.launch import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "test_first_sla.py"
COMMAND = ".venv/bin/pytest docs/examples/test_first_sla.py --mcpswarm-target ws://127.0.0.1:8080/mcp/ws"


def test_readme_shows_the_example_verbatim_and_runs_it_with_a_runnable_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert EXAMPLE.read_text().strip() in readme
    assert f"<!-- runnable: server=8080 -->\n```bash\n{COMMAND}\n```" in readme


def test_the_example_fails_on_a_slow_server_listing_the_check(
    project: pytest.Pytester, reference_server: Callable[..., ServerProcess]
) -> None:
    server = reference_server("--delay-ms", "80")
    project.makepyfile(test_first_sla=EXAMPLE.read_text())
    result = project.runpytest(
        f"--mcpswarm-target={server.ws_url}", "--mcpswarm-workers=1", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*p99 < 50ms*"])
