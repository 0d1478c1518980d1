"""The plugin running real scenarios against reference servers on loopback, at tiny scales."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_mcpswarm.compare import machine_id
from pytest_mcpswarm.server.launch import ServerProcess

LOW_LOAD_TEST = """
def test_low_load(mcpswarm):
    mcpswarm("low-load")
"""


def read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_the_marker_fails_a_test_listing_every_check_and_passes_another(
    project: pytest.Pytester, tiny: tuple[str, ...]
) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.mcpswarm_sla("p99<1us, error_rate<50%")
        def test_too_strict(mcpswarm):
            mcpswarm("low-load")

        @pytest.mark.mcpswarm_sla("p99<10s, error_rate<50%")
        def test_generous(mcpswarm, request):
            from pytest_mcpswarm.plugin import SCENARIO_KEY

            result = mcpswarm("low-load")
            assert result["sla"]["source"] == "marker" and result["sla"]["passed"]
            assert request.node.stash[SCENARIO_KEY] == [result.data]
            result.assert_sla("not_sent==0")

        def test_assert_sla_helper(mcpswarm):
            mcpswarm("low-load").assert_sla("p50<1us, rps>=1")
        """
    )
    result = project.runpytest(*tiny)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*low-load: SLA failed (1 of 2 checks)",
            "*FAIL p99 < 1us: actual *us",
            "*PASS error_rate < 50%: actual 0%",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*low-load#3: SLA failed (1 of 2 checks)", "*FAIL p50 < 1us*", "*PASS rps >= 1*"]
    )


def test_sla_option_replaces_the_default_and_a_slow_external_server_fails_it(
    project: pytest.Pytester,
    tiny: tuple[str, ...],
) -> None:
    project.makepyfile(
        """
        def test_baseline(mcpswarm):
            mcpswarm("baseline")
        """
    )
    with ServerProcess(["--delay-ms", "150"]) as slow:
        result = project.runpytest(*tiny, f"--mcpswarm-target={slow.ws_url}", "--mcpswarm-load-scale=0.04")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*baseline: SLA failed*", "*FAIL p95 < 100ms: actual *ms"])
        loose = project.runpytest(
            *tiny, f"--mcpswarm-target={slow.ws_url}", "--mcpswarm-sla=baseline=p99<5s, error_rate<1%"
        )
        loose.assert_outcomes(passed=1)
        assert slow.proc is not None and slow.proc.poll() is None  # external: never stopped


def test_report_files_json_and_saved_runs(project: pytest.Pytester, tiny: tuple[str, ...]) -> None:
    project.makepyfile(LOW_LOAD_TEST)
    project.runpytest(*tiny, "--mcpswarm-json=out/report.json", "--mcpswarm-save=main").assert_outcomes(
        passed=1
    )
    project.runpytest(*tiny, "--mcpswarm-save=main").assert_outcomes(passed=1)
    doc = read_json(project.path / "out" / "report.json")
    assert doc["schema"] == "mcpswarm/1"
    assert {"node", "python", "cpu_count"} <= set(doc["machine_info"])
    assert {"id", "branch", "dirty"} <= set(doc["commit_info"])
    (scenario,) = doc["scenarios"]
    assert scenario["name"] == "low-load" and scenario["backend"] == "local"
    assert scenario["nodeid"] == "test_report_files_json_and_saved_runs.py::test_low_load"
    assert scenario["params"]["time_scale"] == 0.01 and scenario["params"]["clients"] == 1
    assert scenario["sla"]["expr"] == "p99<100ms, error_rate<0.1%, rps>=9.5" and scenario["sla"]["passed"]
    req = scenario["requests"]
    assert req["scheduled"] == req["ok"] + req["errors"] + req["timeouts"] + req["not_sent"] > 0
    assert scenario["timeseries"] and scenario["histogram"]
    saved = sorted(p.name for p in (project.path / ".mcpswarm" / machine_id()).iterdir())
    assert saved == ["0001_main.json", "0002_main.json"]


def test_compare_fail_trips_on_a_doctored_baseline(project: pytest.Pytester, tiny: tuple[str, ...]) -> None:
    project.makepyfile(LOW_LOAD_TEST)
    project.runpytest(*tiny, "--mcpswarm-save=base").assert_outcomes(passed=1)
    saved = project.path / ".mcpswarm" / machine_id() / "0001_base.json"
    doc = read_json(saved)
    doc["scenarios"][0]["metrics"]["p99"] = 1.0  # the baseline claims a 1 us p99
    (project.path / "doctored.json").write_text(json.dumps(doc))

    gated = project.runpytest(
        *tiny, "--mcpswarm-compare=doctored.json", "--mcpswarm-compare-fail=p99:+10%, rps:-50%"
    )
    gated.assert_outcomes(passed=1)
    assert gated.ret == pytest.ExitCode.TESTS_FAILED
    out = gated.stdout.str()
    assert "[p99:+10%] REGRESSION" in out and "[rps:-50%] ok" in out and "1 regression(s):" in out

    fine = project.runpytest(*tiny, "--mcpswarm-compare=base", "--mcpswarm-compare-fail=rps:-50%")
    assert fine.ret == pytest.ExitCode.OK
    fine.stdout.fnmatch_lines(["baseline: *0001_base.json*"])
    assert "[rps:-50%] ok" in fine.stdout.str() and "REGRESSION" not in fine.stdout.str()


def test_hooks_adjust_the_scenario_and_add_to_the_report(
    project: pytest.Pytester, tiny: tuple[str, ...]
) -> None:
    project.makeconftest(
        """
        def pytest_mcpswarm_adjust_scenario(scenario, settings):
            return scenario.with_overrides({"rate": 20})

        def pytest_mcpswarm_scenario_result(config, scenario):
            scenario["extra"] = "from a hook"

        def pytest_mcpswarm_update_json(config, document):
            document["ci"] = {"run": 7}
        """
    )
    project.makepyfile(LOW_LOAD_TEST)
    project.runpytest(*tiny, "--mcpswarm-json=r.json").assert_outcomes(passed=1)
    doc = read_json(project.path / "r.json")
    assert doc["ci"] == {"run": 7}
    assert doc["scenarios"][0]["extra"] == "from a hook"
    assert doc["scenarios"][0]["params"]["rate"] == 20


def test_clients_are_spread_over_local_replicas(project: pytest.Pytester, tiny: tuple[str, ...]) -> None:
    project.makepyfile(
        """
        import json, urllib.request

        def test_spread(mcpswarm, mcpswarm_stack):
            assert len(mcpswarm_stack.targets) == 2
            result = mcpswarm("low-load")
            assert result["params"]["targets"] == 2 and result["connections"]["opened"] == 2
            for url in mcpswarm_stack.metrics_endpoints:
                stats = json.load(urllib.request.urlopen(url.replace("/metrics", "/stats")))
                assert stats["requests"]["tools/list"]["ok"] + stats["requests"]["resources/list"]["ok"] >= 5
        """
    )
    result = project.runpytest(*tiny, "--mcpswarm-server-replicas=2", "--mcpswarm-load-scale=0.2")
    result.assert_outcomes(passed=1)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _wait_dead(pids: list[int], timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_local_stack_is_torn_down_on_sigterm_and_ctrl_c(project: pytest.Pytester, sig: int) -> None:
    pids_file = project.path / "pids"
    project.makepyfile(
        f"""
        import time

        def test_hang(mcpswarm_stack):
            open({str(pids_file)!r}, "w").write(" ".join(map(str, mcpswarm_stack.pids)))
            time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--mcpswarm-server-replicas=2"],
        cwd=project.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not (pids_file.exists() and pids_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        pids = [int(p) for p in pids_file.read_text().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out.decode()
    assert _wait_dead(pids) == []


def test_keep_stack_leaves_the_servers_up_and_says_how_to_stop_them(project: pytest.Pytester) -> None:
    project.makepyfile("def test_up(mcpswarm_stack):\n    assert mcpswarm_stack.targets\n")
    result = project.runpytest_subprocess("--mcpswarm-keep-stack", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    line = next(x for x in result.stdout.lines if x.startswith("mcpswarm: stop it with: kill "))
    pids = [int(p) for p in line.removeprefix("mcpswarm: stop it with: kill ").split()]
    try:
        assert pids and all(_alive(p) for p in pids)
        result.stdout.fnmatch_lines(["mcpswarm: stack kept up (local): ws://127.0.0.1:*/mcp/ws"])
    finally:
        for pid in pids:
            if _alive(pid):
                __import__("os").kill(pid, signal.SIGTERM)
    assert _wait_dead(pids) == []
