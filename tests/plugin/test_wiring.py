"""The plugin's wiring, without running load: --help, usage errors, option precedence, markers."""

from __future__ import annotations

import sys
import types

import pytest

from pytest_mcpswarm.options import OPTIONS


def test_help_lists_every_option_in_one_group_with_its_ini_key(project: pytest.Pytester) -> None:
    result = project.runpytest("--help")
    assert result.ret == 0
    out = result.stdout.str()
    group = out.index("MCP load testing (pytest-mcpswarm):")
    for option in OPTIONS:
        assert out.index(option.flag) > group, option.flag
        assert option.ini in out and option.env in out
    result = project.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.mcpswarm_sla(expr):*"])


@pytest.mark.parametrize(
    "case",
    [
        (["--mcpswarm-time-scale=fast"], {}, "",
         ["*mcpswarm: --mcpswarm-time-scale must be a number > 0*got 'fast'*accepted form*"]),
        ([], {"MCPSWARM_WORKERS": "0"}, "",
         ["*--mcpswarm-workers (from $MCPSWARM_WORKERS) must be a whole number >= 1*"]),
        ([], {}, "mcpswarm_load_scale = -1",
         ["*--mcpswarm-load-scale (from ini key mcpswarm_load_scale) must be a number > 0*"]),
        (["--mcpswarm-backend=swarm", "--mcpswarm-target=ws://127.0.0.1:1/mcp/ws"], {}, "",
         ["*--mcpswarm-target is only used by the external backend, but the backend is 'swarm'*"]),
        (["--mcpswarm-backend=external"], {}, "", ["*needs --mcpswarm-target URL*"]),
        (["--mcpswarm-set=baseline.rate=fast"], {}, "",
         ["*--mcpswarm-set baseline: rate='fast': field 'rate' must be a positive number*"]),
        (["--mcpswarm-set=message-bombing.rate=5"], {}, "", ["*is phased, so rate is set per phase*"]),
        (["--mcpswarm-sla=baseline=p99<5"], {}, "", ["*--mcpswarm-sla has a bad SLA*needs a unit*"]),
        (["--mcpswarm-compare=nothing-saved"], {}, "", ["*no saved run of that name*--mcpswarm-save NAME*"]),
        (["--mcpswarm-compare-fail=p99:+1%"], {}, "", ["*needs a baseline*"]),
    ],
)  # fmt: skip
def test_bad_values_are_usage_errors(
    project: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[list[str], dict[str, str], str, list[str]],
) -> None:
    args, env, ini, lines = case
    if ini:
        project.makeini(f"[pytest]\nasyncio_default_fixture_loop_scope = function\n{ini}\n")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    project.makepyfile("def test_nothing(): pass")
    result = project.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(lines)


def test_precedence_is_cli_then_env_then_ini_then_default(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        "mcpswarm_time_scale = 0.5\nmcpswarm_load_scale = 0.5\nmcpswarm_workers = 3\n"
        "mcpswarm_set =\n    baseline.clients=5\n    baseline.rate=50\n"
    )
    monkeypatch.setenv("MCPSWARM_LOAD_SCALE", "0.25")
    monkeypatch.setenv("MCPSWARM_TIME_SCALE", "0.2")
    monkeypatch.setenv("MCPSWARM_SET", "baseline.rate=60")
    project.makepyfile(
        """
        from pytest_mcpswarm.plugin import SESSION_KEY

        def test_settings(pytestconfig):
            s = pytestconfig.stash[SESSION_KEY].settings
            assert (s.time_scale, s.load_scale, s.workers, s.server_replicas) == (0.1, 0.25, 3, 1)
            assert dict(s.overrides) == {"baseline.clients": "7", "baseline.rate": "60"}
            assert (s.sources["time_scale"], s.sources["load_scale"], s.sources["workers"]) == (
                "cli", "env", "ini")
            assert s.sources["server_replicas"] == "default"
        """
    )
    result = project.runpytest("--mcpswarm-time-scale=0.1", "--mcpswarm-set=baseline.clients=7")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["mcpswarm: backend local (1 server(s) over ws), 3 worker(s), time-scale 0.1*"]
    )


def test_markers_pass_strict_markers(project: pytest.Pytester, tiny: tuple[str, ...]) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.mcpswarm_sla("p99<1s")
        def test_marked():
            pass
        """
    )
    project.runpytest("--strict-markers", *tiny).assert_outcomes(passed=1)


def test_a_bad_marker_fails_its_test_with_the_accepted_form(
    project: pytest.Pytester, tiny: tuple[str, ...]
) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.mcpswarm_sla("p99 below 5ms")
        def test_marked(mcpswarm):
            mcpswarm("low-load")
        """
    )
    result = project.runpytest(*tiny)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*SLA check 'p99 below 5ms'*write checks like*"])


def test_the_html_integration_is_registered_only_when_pytest_html_is_active(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = types.ModuleType("pytest_mcpswarm.report.pytest_html")
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    project.makepyfile(
        """
        import sys

        def test_registered(pytestconfig):
            plugin = pytestconfig.pluginmanager.get_plugin("mcpswarm-html")
            active = pytestconfig.pluginmanager.hasplugin("html")
            assert plugin is (sys.modules["pytest_mcpswarm.report.pytest_html"] if active else None)
        """
    )
    project.runpytest().assert_outcomes(passed=1)
    project.runpytest("-p", "no:html").assert_outcomes(passed=1)


def test_an_interrupt_at_a_lineless_instruction_is_reported_as_an_interrupt(project: pytest.Pytester) -> None:
    """CPython 3.11 gives ``tb_lineno = None`` to a frame interrupted where its bytecode has no line
    (a ``with`` block's exit, say); pytest's own Ctrl-C report then dies with a TypeError."""
    project.makepyfile(
        """
        import types

        def suspended_in_a_with():
            with open(__file__):
                yield

        def test_interrupted():
            gen = suspended_in_a_with()
            next(gen)
            lineless = next(s for s, _, line in gen.gi_code.co_lines() if line is None)
            raise KeyboardInterrupt().with_traceback(types.TracebackType(None, gen.gi_frame, lineless, -1))
        """
    )
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*! KeyboardInterrupt !*", "*.py:11: KeyboardInterrupt"])  # the raise line
    assert "TypeError" not in result.stdout.str() + result.stderr.str()
