"""Stops without leaks on the swarm backend: a real ``pytest --mcpswarm-backend swarm`` session,
signalled at the right moment, must leave nothing labelled with its stack behind.

Each test runs a one-scenario session in a subprocess (its own stack, ``mcpswarm-stops``, from
the real CI-sized stack file) and signals it:

- Ctrl-C (SIGINT) during the deploy: as soon as the stack's services appear;
- SIGTERM (and, in the full matrix, Ctrl-C) during a run: once the controller posted the start;
- Ctrl-C during the teardown: once ``docker stack rm`` removed the first service (the backend
  notes a first Ctrl-C there and finishes the removal; a second one leaves it to the reaper);
- ``kill -9`` of pytest *and* of its reaper, then ``mcpswarm swarm cleanup --orphans`` reaps
  the stack by label, and leaves a stack marked keep alone.

"Nothing" means: no service, container, network, volume, config or secret labelled with the
stack, no process that inherited the session's environment (docker CLI children, the reaper),
and an empty ``$TMPDIR``.  A teardown that was interrupted is finished by the reaper once pytest
has exited, so the checks wait for it (bounded).

These deploy the same stack file as the session's stack (same VXLAN IDs and host ports), so
tests/swarm/conftest.py runs them after its teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_mcpswarm.swarm import labels as L
from pytest_mcpswarm.swarm import stack
from pytest_mcpswarm.swarm.images import project_root
from tests.swarm.conftest import connect_or_skip
from tests.swarm.live import deploy_tiny, full_matrix

pytestmark = [pytest.mark.docker, pytest.mark.slow]

STACK = "mcpswarm-stops"
TAG = "MCPSWARM_STOPS_TEST_TAG"
SCENARIO = """
def test_scenario(mcpswarm):
    mcpswarm("low-load", clients=2, rate=5, duration_s={duration}, timeout_s=1)
"""


@dataclass
class Session:
    proc: subprocess.Popen[bytes]
    tag: str
    tmpdir: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _tagged(tag: str) -> dict[int, str]:
    """pid -> command line of every process that inherited ``TAG=tag``."""
    found = {}
    needle = f"{TAG}={tag}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
    return found


@pytest.fixture
def client() -> Any:
    return connect_or_skip()


@pytest.fixture
def session(tmp_path: Path, client: Any) -> Iterator[Callable[[float], Session]]:
    """Factory: start the subprocess session with a scenario of ``duration`` s."""
    started: list[Session] = []

    def start(duration: float) -> Session:
        work, tmpdir = tmp_path / "work", tmp_path / "tmp"
        work.mkdir()
        tmpdir.mkdir()
        (work / "test_scenario.py").write_text(SCENARIO.format(duration=duration))
        tag = uuid.uuid4().hex
        env = {  # the user's ports and images stay; no other option may leak into the session
            k: v for k, v in os.environ.items()
            if not k.startswith(("PYTEST_", "MCPSWARM_")) or k.endswith(("_PORT", "_IMAGE"))
        }  # fmt: skip
        env |= {"MCPSWARM_STACK": STACK, "MCPSWARM_DOCKER_DIR": str(project_root() / "docker"),
                "TMPDIR": str(tmpdir), TAG: tag}  # fmt: skip
        log = tmp_path / "session.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", "-q", "test_scenario.py",
                 "--mcpswarm-backend", "swarm", "--mcpswarm-swarm-ci", "--mcpswarm-workers", "2"],
                cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        s = Session(proc, tag, tmpdir, log)
        started.append(s)
        return s

    yield start
    for s in started:  # a failed test must not leave its session (or the stack) behind
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()
        for pid in _tagged(s.tag):
            _kill(pid)
    stack.remove(client, STACK)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _until(what: str, condition: Callable[[], bool], s: Session, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert s.proc.poll() is None, f"the session ended before {what}:\n{s.output()[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s:\n{s.output()[-3000:]}"
        time.sleep(0.1)


def _services(client: Any) -> list[Any]:
    return list(client.services.list(filters={"label": f"{stack.NAMESPACE}={STACK}"}))


def _during_deploy(client: Any, s: Session) -> None:
    _until("stack services", lambda: bool(_services(client)), s)


def _run_started(client: Any) -> bool:
    try:
        service = client.services.get(f"{STACK}_mcp-client-high-load")
    except Exception:
        return False
    spec = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
    env = dict(e.split("=", 1) for e in spec.get("Env") or [])
    run = env.get("MCPSWARM_RUN_ID")
    if not run:
        return False
    port = os.environ.get("MCPSWARM_CONTROLLER_PORT") or "8090"
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/runs/{run}", timeout=2) as response:
            start_at = json.loads(response.read())["start_at"]
    except OSError:
        return False
    return start_at is not None and time.time() > start_at + 1  # one second into the run


def _during_run(client: Any, s: Session) -> None:
    _until("a run that started", lambda: _run_started(client), s)


def _during_teardown(client: Any, s: Session) -> None:
    most = [0]

    def removing() -> bool:
        count = len(_services(client))
        most[0] = max(most[0], count)
        return most[0] >= 9 and count < most[0]  # stack rm has removed a service, not all of it yet

    _until("the teardown", removing, s, timeout=300)
    assert stack.leftovers(client, STACK)["containers"], "the teardown finished before the signal"


def _assert_nothing_left(client: Any, s: Session, timeout: float = 180) -> None:
    """Wait (bounded) for the reaper to finish what an interrupted teardown left, then check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rest = stack.leftovers(client, STACK)
        if not any(rest.values()) and not _tagged(s.tag):
            break
        time.sleep(1)
    assert stack.leftovers(client, STACK) == {kind: [] for kind in stack.KINDS}, s.output()[-3000:]
    namespaced = client.containers.list(all=True, filters={"label": f"{stack.NAMESPACE}={STACK}"})
    assert namespaced == []
    assert _tagged(s.tag) == {}
    assert sorted(p.name for p in s.tmpdir.iterdir()) == []


MOMENTS = {"deploy": _during_deploy, "run": _during_run, "teardown": _during_teardown}


@pytest.mark.parametrize(
    ("moment", "signum"),
    [
        ("deploy", signal.SIGINT),
        ("run", signal.SIGTERM),
        pytest.param("teardown", signal.SIGINT, marks=full_matrix),
        pytest.param("run", signal.SIGINT, marks=full_matrix),
    ],
    ids=["ctrl-c-during-deploy", "sigterm-during-run", "ctrl-c-during-teardown", "ctrl-c-during-run"],
)
def test_a_signalled_session_leaves_nothing(
    client: Any, session: Callable[[float], Session], moment: str, signum: int
) -> None:
    s = session(2 if moment == "teardown" else 60)
    started = time.monotonic()
    MOMENTS[moment](client, s)
    signalled = time.monotonic()
    os.kill(s.proc.pid, signum)
    code = s.proc.wait(timeout=240)
    exited = time.monotonic()
    _assert_nothing_left(client, s)
    name = signal.Signals(signum).name
    print(
        f"\n[swarm] {name} {signalled - started:.1f} s in ({moment}); pytest exited "
        f"{exited - signalled:.1f} s later ({code}); clean {time.monotonic() - exited:.1f} s later"
    )
    if moment == "teardown":  # the first Ctrl-C is noted, and the teardown goes on
        assert "Ctrl-C: still removing stack" in s.output(), s.output()[-3000:]
        assert code in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), s.output()[-3000:]
    else:
        assert code == pytest.ExitCode.INTERRUPTED, s.output()[-3000:]


def test_kill_9_then_cleanup_reaps_by_label_and_spares_kept_stacks(
    client: Any, session: Callable[[float], Session], tmp_path: Path
) -> None:
    s = session(60)
    _during_deploy(client, s)
    s.proc.kill()  # kill -9: no teardown runs
    s.proc.wait()
    for pid, cmdline in _tagged(s.tag).items():  # the reaper too: the worst case
        if "pytest_mcpswarm.swarm.reaper" in cmdline:
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60  # the orphaned `docker stack deploy` finishes on its own
    while _tagged(s.tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _tagged(s.tag) == {}
    assert stack.leftovers(client, STACK)["services"], "nothing was deployed before the kill"
    kept = "mcpswarm-kept-stops"
    host = L.this_owner().rpartition(":")[0]
    # Its owner is dead too, but it is kept.
    deploy_tiny(tmp_path, kept, {L.STACK: kept, L.OWNER: f"{host}:{s.proc.pid}", L.KEEP: "true"})
    try:
        mcpswarm = Path(sys.executable).with_name("mcpswarm")
        started = time.monotonic()
        proc = subprocess.run([str(mcpswarm), "swarm", "cleanup", "--orphans", "--yes"],
                              capture_output=True, text=True, timeout=240, check=False)  # fmt: skip
        print(f"\n[swarm] cleanup --orphans in {time.monotonic() - started:.1f} s: {proc.stdout.strip()}")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"removing stack {STACK}" in proc.stdout and kept not in proc.stdout, proc.stdout
        _assert_nothing_left(client, s, timeout=10)
        assert client.services.list(filters={"label": f"{stack.NAMESPACE}={kept}"})
    finally:
        stack.remove(client, kept)
    assert not any(stack.leftovers(client, kept).values())
