"""Hooks other plugins and conftest.py files may implement (declarations only).

Implement them in a ``conftest.py`` or a plugin; pytest finds them by name.
For each scenario a test runs with the ``mcpswarm`` fixture, the plugin calls
``pytest_mcpswarm_adjust_scenario`` before the run and
``pytest_mcpswarm_scenario_result`` after it; at the end of the session it
calls ``pytest_mcpswarm_update_json`` once, before it writes the report.
``docs/HOOKS.md`` is generated from these docstrings
(``python -m pytest_mcpswarm.docsgen hooks``), and
``tests/plugin/test_hook_examples.py`` runs every example below.
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

    Called once for every ``mcpswarm(...)`` call in a test, with the scenario
    exactly as it would run: after the test's own fields
    (``mcpswarm("normal", clients=10)``), after ``--mcpswarm-time-scale`` and
    ``--mcpswarm-load-scale``, and after ``--mcpswarm-set``; before the load
    plan is built and the SLA is chosen.  The first implementation that
    returns a scenario wins (``firstresult``); what it returns runs as is,
    with no further scaling.

    ``scenario`` is a frozen ``pytest_mcpswarm.scenarios.Scenario``: build the
    replacement with ``scenario.with_overrides({FIELD: VALUE})``, which takes
    the fields ``--mcpswarm-set`` takes (profile fields such as ``clients``,
    ``rate``, ``payload_bytes``; ``warmup_s``, ``timeout_s``, ``rps_floor``;
    ``PHASE.duration_s|clients|rate`` for phased scenarios).  ``settings`` is
    the session's frozen ``pytest_mcpswarm.options.Settings`` (every option's
    final value).

    Example, in ``conftest.py``: a smaller staging server gets half the clients
    and a shorter request timeout::

        def pytest_mcpswarm_adjust_scenario(scenario, settings):
            if settings.backend != "external":
                return None
            fields = {"timeout_s": 5}
            if not scenario.phases:  # phased scenarios set clients per phase
                fields["clients"] = max(1, scenario.profile.clients // 2)
            return scenario.with_overrides(fields)
    """


@pytest.hookspec
def pytest_mcpswarm_scenario_result(config: pytest.Config, scenario: dict[str, Any]) -> None:
    """Add to (or read) a scenario's report entry after it ran and its SLA was judged.

    Called once per scenario, in the test that ran it, after the SLA verdict
    and the backend's own additions (the swarm backend's ``swarm`` facts) and
    before the entry is recorded: so what you add reaches the JSON report,
    the baseline comparison and the HTML report, and an exception here fails
    the test.

    ``scenario`` is the dict that goes into the JSON report's ``scenarios``
    (schema ``mcpswarm/1``, described field by field in
    ``pytest_mcpswarm/report/schema/report.schema.json``; extra keys are
    allowed).  Change it in place.  Test code sees the same dict as
    ``result.data``.

    Example, in ``conftest.py``: record which build of the server was
    measured::

        import os

        def pytest_mcpswarm_scenario_result(config, scenario):
            scenario["server_build"] = os.environ.get("SERVER_BUILD", "unknown")
    """


@pytest.hookspec
def pytest_mcpswarm_update_json(config: pytest.Config, document: dict[str, Any]) -> None:
    """Add to the session's JSON report just before it is written or saved.

    Called once at the end of the session (``pytest_sessionfinish``), only
    when a scenario ran and ``--mcpswarm-json`` or ``--mcpswarm-save`` asks
    for a report; the same document goes to both.

    ``document`` is the whole ``mcpswarm/1`` report: ``schema``, ``created``,
    ``machine_info``, ``commit_info``, ``session``, ``scenarios`` and, with
    ``--mcpswarm-compare``, ``compare``.  Change it in place; keep the
    documented keys' meaning and add your own beside them.

    Example, in ``conftest.py``: tag the report with the CI run it came from::

        import os

        def pytest_mcpswarm_update_json(config, document):
            document["ci"] = {"run_id": os.environ.get("GITHUB_RUN_ID"), "ref": os.environ.get("GITHUB_REF")}
    """
