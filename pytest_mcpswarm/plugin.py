"""pytest11 entry point: wires options, hooks, markers, fixtures and the session's reports; delegates.

- options: ``options.py`` (one ``mcpswarm`` group; CLI > env > ini > default);
- hooks: ``hookspec.py``;
- fixtures: ``fixtures.py`` (``mcpswarm_stack``, ``mcpswarm``);
- the session object (results, comparison, report files): ``session.py``,
  kept in ``config.stash[SESSION_KEY]``.
"""

from __future__ import annotations

import importlib
from types import TracebackType
from typing import Any

import pytest

from pytest_mcpswarm import hookspec, options
from pytest_mcpswarm.compare import terminal_lines
from pytest_mcpswarm.errors import MCPSwarmError
from pytest_mcpswarm.fixtures import mcpswarm, mcpswarm_stack
from pytest_mcpswarm.scenarios import check_overrides
from pytest_mcpswarm.session import SCENARIO_KEY, SESSION_KEY, McpSwarmSession

__all__ = ["SCENARIO_KEY", "SESSION_KEY", "mcpswarm", "mcpswarm_stack"]

#: Name under which the pytest-html integration is registered when pytest-html is active.
HTML_PLUGIN = "mcpswarm-html"
MARKERS = (
    "mcpswarm_sla(expr): SLA the scenarios run by this test must meet, in the SLA language, e.g. "
    "'p99<200ms, error_rate<0.1%, p99[10s]<400ms'; replaces the scenario's default SLA",
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspec)


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    try:
        settings = options.from_config(config)
        check_overrides(settings.overrides)
        session = McpSwarmSession(settings, root=config.rootpath, cwd=config.invocation_params.dir)
    except MCPSwarmError as exc:
        raise pytest.UsageError(f"mcpswarm: {exc}") from None
    config.stash[SESSION_KEY] = session
    if config.pluginmanager.hasplugin("html") and not config.pluginmanager.has_plugin(HTML_PLUGIN):
        try:
            module = importlib.import_module("pytest_mcpswarm.report.pytest_html")
        except ImportError:
            return
        config.pluginmanager.register(module, HTML_PLUGIN)


def pytest_report_header(config: pytest.Config) -> str | None:
    session = config.stash.get(SESSION_KEY, None)
    if session is None:
        return None
    s = session.settings
    if s.backend == "external":
        where = s.target
    elif s.backend == "swarm" and s.sources.get("server_replicas", "default") == "default":
        where = f"the stack's server replicas over {s.transport}"
    else:
        where = f"{s.server_replicas} server(s) over {s.transport}"
    return (
        f"mcpswarm: backend {s.backend} ({where}), {s.workers} worker(s), "
        f"time-scale {s.time_scale:g}, load-scale {s.load_scale:g}"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the reports before other plugins (pytest-html) read them; a regression fails the run."""
    state = session.config.stash.get(SESSION_KEY, None)
    if state is None:
        return
    config = session.config

    def update_json(doc: dict[str, Any]) -> None:
        config.hook.pytest_mcpswarm_update_json(config=config, document=doc)

    state.finish(update_json)
    if state.regressions and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(tryfirst=True)
def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """Unlink traceback entries without a line before pytest's terminal reporter renders them.

    CPython 3.11 gives ``tb_lineno = None`` to a frame that a signal interrupted where its bytecode
    has no line (a ``with`` block's exit, for one). pytest subtracts 1 from it, so the Ctrl-C or
    SIGTERM report of the session, and the interrupted teardown's exit code, were lost to a
    TypeError. Such an entry has no source line to show anyway.
    """
    seen: set[int] = set()
    exc: BaseException | None = excinfo.value
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc.__traceback__ = _without_lineless(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__
    _without_lineless(excinfo.tb)  # pytest's own head entry (wrap_session) always has a line


def _without_lineless(tb: TracebackType | None) -> TracebackType | None:
    """The first entry with a line; the entries after it relinked past the ones without."""
    while tb is not None and tb.tb_lineno is None:
        tb = tb.tb_next
    entry = tb
    while entry is not None:
        after = entry.tb_next
        while after is not None and after.tb_lineno is None:
            after = after.tb_next
        entry.tb_next = after
        entry = after
    return tb


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(SESSION_KEY, None)
    if state is None or not (state.scenarios or state.kept_stack):
        return
    tr = terminalreporter
    tr.write_sep("=", "mcpswarm")
    for line in state.summary_lines():
        tr.write_line(line)
    ran = {s["name"].split("#")[0] for s in state.scenarios}
    for key in state.settings.overrides:
        if key.split(".", 1)[0] not in ran:
            tr.write_line(f"note: --mcpswarm-set {key} matched no scenario that ran", yellow=True)
    if state.compare is not None:
        tr.write_sep("-", "mcpswarm: compared with a baseline")
        for line in terminal_lines(state.compare):
            tr.write_line(line, red="REGRESSION" in line)
        if state.regressions:
            tr.write_line(f"mcpswarm: {len(state.regressions)} regression(s):", red=True, bold=True)
            for text in state.regressions:
                tr.write_line(f"  {text}", red=True)
    for what, path in state.written:
        tr.write_line(f"mcpswarm: {what}: {path}")
    if state.kept_stack:
        kept = state.kept_stack
        pids = " ".join(str(p) for p in kept.get("pids", ()))
        tr.write_line(f"mcpswarm: stack kept up ({kept['backend']}): {', '.join(kept['targets'])}")
        if pids:
            tr.write_line(f"mcpswarm: stop it with: kill {pids}")
