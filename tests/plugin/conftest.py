"""pytester set-up: an inner project with its own ini, tiny scales so each scenario takes ~1 s."""

from __future__ import annotations

import pytest

#: 1 client, about 1 s per 2-minute scenario.
TINY = (
    "--mcpswarm-time-scale=0.01",
    "--mcpswarm-load-scale=0.1",
    "--mcpswarm-workers=1",
    "-p",
    "no:cacheprovider",
)


@pytest.fixture
def tiny() -> tuple[str, ...]:
    """Options for a tiny, fast run."""
    return TINY


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in list(__import__("os").environ):
        if name.startswith("MCPSWARM_"):
            monkeypatch.delenv(name)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester
