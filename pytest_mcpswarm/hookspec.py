"""Hooks other plugins and conftest.py files may implement (declarations only).

Implement them in a ``conftest.py`` or a plugin; pytest finds them by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_mcpswarm.options import Settings
    from pytest_mcpswarm.scenarios import Scenario


@pytest.hookspec(firstresult=True)
def pytest_mcpswarm_adjust_scenario(scenario: Scenario, settings: Settings) -> Scenario | None:
    """Return a replacement for ``scenario`` just before it runs, or None to keep it.

    Called after scaling and ``--mcpswarm-set``; the first implementation that
    returns a scenario wins.  Example, in ``conftest.py``::

        import dataclasses

        def pytest_mcpswarm_adjust_scenario(scenario, settings):
            if settings.backend == "external" and scenario.name == "high-load":
                # our staging server is smaller: half the clients, stricter timeout
                return scenario.with_overrides({"clients": scenario.profile.clients // 2, "timeout_s": 5})
            return None
    """


@pytest.hookspec
def pytest_mcpswarm_scenario_result(config: pytest.Config, scenario: dict[str, Any]) -> None:
    """Add to (or read) a scenario's report entry after it ran and its SLA was judged.

    ``scenario`` is the dict that goes into the JSON report's ``scenarios``
    (schema mcpswarm/1; extra keys are allowed).  Example::

        import urllib.request

        def pytest_mcpswarm_scenario_result(config, scenario):
            body = urllib.request.urlopen("http://127.0.0.1:9100/metrics").read().decode()
            scenario["server_rss_bytes"] = parse_rss(body)
    """


@pytest.hookspec
def pytest_mcpswarm_update_json(config: pytest.Config, document: dict[str, Any]) -> None:
    """Add to the session's JSON report just before it is written or saved.

    Example::

        import os

        def pytest_mcpswarm_update_json(config, document):
            document["ci"] = {"run_id": os.environ.get("GITHUB_RUN_ID")}
    """
