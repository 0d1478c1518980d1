"""The swarm backend: the docker/ stack on a real Docker Swarm, load from its client replicas.

``start``:

1. preconditions, each a one-line error naming the fix: the engine answers, the swarm is
   active (``swarm init`` only with ``--mcpswarm-swarm-init`` or under ``CI=true``), this
   node is a manager, the images exist;
2. a sweep: stacks we labelled whose owner process (``mcpswarm.owner`` = host:pid) died on
   this host, and that are not ``mcpswarm.keep=true``, are removed; unlabelled stacks are
   never touched;
3. ``docker stack deploy --resolve-image never`` (plus docker-compose.ci.yml with
   ``--mcpswarm-swarm-ci``), labelled with this process as owner and ``mcpswarm.keep`` from
   ``--mcpswarm-keep-stack``; the server service scaled to ``--mcpswarm-server-replicas``
   when given; the background client services scaled to 0 so only scenarios load the
   servers; then wait until every service converged and Traefik routes to every server;
4. a reaper process that removes the stack if this process dies without tearing down
   (``kill -9``), unless the stack is kept.  It is started before the deploy and stopped
   only after the stack is gone, so a Ctrl-C or SIGTERM at any moment (during the deploy, a
   run, or the teardown itself) leaves nothing: what the interrupted teardown did not
   finish, the reaper finishes once pytest has exited.

A scenario (``execute``) runs on the replicas of ``mcp-client-high-load`` through Traefik,
as ``swarm/control.py`` describes: WebSocket by default (Traefik pins each connection to one
server replica); with ``--mcpswarm-transport http`` the stateless revision 2026-07-28, since
Traefik balances every HTTP request on its own.  The replicas' ``done`` messages are merged
by ``load.controller.merge_done``, the local backend's code, then cross-checked against
Prometheus (``swarm/crosscheck.py``).

``stop`` removes the stack and waits until nothing labelled with it is left.  A first Ctrl-C
meanwhile is only noted (the removal takes seconds); a second one, or SIGTERM, interrupts it and
leaves the rest to the reaper.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from pytest_mcpswarm import __version__
from pytest_mcpswarm.errors import DeployError, SwarmInactiveError
from pytest_mcpswarm.load.controller import RunResult, merge_done
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.options import Settings
from pytest_mcpswarm.protocol import versions
from pytest_mcpswarm.swarm import control, engine, stack
from pytest_mcpswarm.swarm import labels as L

#: The client service that runs scenarios; the other client services are scaled to 0.
SCENARIO_SERVICE: Final = "mcp-client-high-load"
BACKGROUND_SERVICES: Final = ("mcp-client-normal", "mcp-client-low-load")
SERVER_SERVICE: Final = "mcp-server"
READY_TIMEOUT_S: Final = 180.0
#: After the plan's end and its request timeout: time to close, post and be fetched.
REPORT_GRACE_S: Final = 60.0


def _port(var: str, default: int) -> int:
    return int(os.environ.get(var) or default)


def _docker_dir(project_root: Any) -> Path:
    """``$MCPSWARM_DOCKER_DIR``, else ./docker (a tox venv's non-editable install), else the checkout's."""
    given = os.environ.get("MCPSWARM_DOCKER_DIR")
    if given:
        return Path(given)
    here = Path("docker")
    if (here / "docker-compose.swarm.yml").is_file():
        return here.resolve()
    return Path(project_root()) / "docker"


@contextlib.contextmanager
def _second_ctrl_c_interrupts(note: Callable[[], None]) -> Iterator[None]:
    """In the main thread: the first SIGINT only calls ``note()``, the second interrupts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed = [0]

    def on_sigint(signum: int, frame: Any) -> None:
        pressed[0] += 1
        if pressed[0] > 1:
            raise KeyboardInterrupt
        note()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class SwarmBackend:
    name = "swarm"

    def __init__(
        self, settings: Settings, *, stack_name: str | None = None, docker_dir: Path | None = None,
        deploy_timeout: float = 300.0, log: Any = None,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.stack = stack_name or os.environ.get("MCPSWARM_STACK") or L.DEFAULT_STACK
        self.transport = settings.transport
        self.server_replicas = (
            settings.server_replicas
            if settings.sources.get("server_replicas", "default") != "default"
            else None
        )
        self.ci = settings.swarm_ci
        self.may_init = settings.swarm_init or os.environ.get("CI") == "true"
        self.keep = settings.keep_stack
        self.deploy_timeout = deploy_timeout
        self._docker_dir = docker_dir
        self.log = log or (lambda line: print(f"[mcpswarm swarm] {line}", file=sys.stderr, flush=True))
        self.web = f"http://127.0.0.1:{_port('MCPSWARM_WEB_PORT', 80)}"
        self.ws = f"ws://127.0.0.1:{_port('MCPSWARM_WS_PORT', 5555)}"
        self.prometheus = f"http://127.0.0.1:{_port('MCPSWARM_PROMETHEUS_PORT', 9090)}"
        self.controller = f"http://127.0.0.1:{_port('MCPSWARM_CONTROLLER_PORT', 8090)}"
        self.client: Any = None
        self.deployed = False
        self.timings: dict[str, float] = {}
        self.servers: tuple[str, ...] = ()
        self._reaper: subprocess.Popen[bytes] | None = None
        #: What ``annotate`` adds to the last scenario's report entry.
        self.last_run: dict[str, Any] = {}
        #: The last run's bottleneck verdict, from its replicas' Docker stats (``capacity.docker_stats``).
        self.last_attribution: dict[str, Any] = {}
        #: ``(run id, start time)`` of the run in progress, once it started.
        self.current: tuple[str, float] | None = None
        self.report_grace_s = REPORT_GRACE_S

    # -- Backend protocol -----------------------------------------------------------------------

    def start(self) -> None:
        from pytest_mcpswarm.swarm.images import IMAGES, image_exists, project_root

        self.client = engine.connect()
        state = engine.swarm_state(self.client)
        if state != "active":
            if not self.may_init:
                raise SwarmInactiveError(
                    f"this Docker engine is not in a swarm (state: {state})",
                    fix="run `mcpswarm swarm init`, or pass --mcpswarm-swarm-init (CI=true does it too)",
                )
            with tempfile.TemporaryDirectory() as scratch:  # no token file outlives the session
                engine.init(self.client, tokens_file=Path(scratch) / ".swarm-tokens")
            self.log("swarm initialised (join tokens: `docker swarm join-token worker`)")
        engine.check_ready(self.client)
        engine.label_nodes(self.client)
        docker_dir = self._docker_dir or _docker_dir(project_root)
        images = self._images(IMAGES, image_exists)
        for name in stack.sweep(self.client, log=self.log):
            self.log(f"swept orphaned stack {name}")
        self._check_stacks()
        atexit.register(self.stop)
        try:
            started = time.monotonic()
            labels = L.StackLabels(self.stack, owner=L.this_owner(), keep=self.keep)
            self.deployed = True
            self._start_reaper()  # first: a kill -9 during the deploy leaves nothing either
            stack.deploy(self.client, docker_dir, labels, images, ci=self.ci, timeout=self.deploy_timeout)
            self._shape()
            self.timings["deploy_s"] = time.monotonic() - started
            self._wait_routed()
            self.timings["routed_s"] = time.monotonic() - started - self.timings["deploy_s"]
            self.log(
                f"stack {self.stack} up in {self.timings['deploy_s']:.1f} s, routed to "
                f"{len(self.servers)} server replicas {self.timings['routed_s']:.1f} s later"
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Remove the stack, then stop the reaper: if this is interrupted, the reaper finishes it."""
        atexit.unregister(self.stop)
        if self.deployed and self.client is not None:
            self.deployed = False
            started = time.monotonic()
            with _second_ctrl_c_interrupts(lambda: self.log(
                f"Ctrl-C: still removing stack {self.stack} (seconds); press it again to leave "
                "the rest to the reaper, which finishes once this process exits"
            )):  # fmt: skip
                stack.remove(self.client, self.stack)
            self.timings["teardown_s"] = time.monotonic() - started
            self.log(f"stack {self.stack} removed in {self.timings['teardown_s']:.1f} s")
        self._stop_reaper()

    def detach(self) -> None:
        """Leave the stack up (it is labelled mcpswarm.keep=true when the session kept it)."""
        atexit.unregister(self.stop)
        self._stop_reaper()
        self.deployed = False
        if self.keep:
            from pytest_mcpswarm.swarm.credentials import read_command

            self.log(f"stack {self.stack} kept; Grafana's admin password: {read_command(self.stack)}")

    @property
    def targets(self) -> tuple[str, ...]:
        return (f"{self.web}/mcp",) if self.transport == "http" else (f"{self.ws}/mcp/ws",)

    @property
    def metrics_endpoints(self) -> tuple[str, ...]:
        return ()

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "stack": self.stack,
            "targets": list(self.targets),
            "in_stack_target": self.overlay_target,
            "server": f"mcpswarm serve {__version__} (reference server), image "
            + os.environ.get("MCPSWARM_SERVER_IMAGE", "mcpswarm/server:latest"),
            "server_replicas": len(self.servers),
            "scenario_service": f"{self.stack}_{SCENARIO_SERVICE}",
            "sizing": "ci" if self.ci else "full",
            "prometheus": self.prometheus,
            "controller": self.controller,
            "keep": self.keep,
            "timings_s": dict(self.timings),
            "managed": True,
        }

    # -- running a scenario ---------------------------------------------------------------------

    @property
    def overlay_target(self) -> str:
        """Where the client replicas send load: Traefik inside the stack's overlay."""
        return "http://traefik:80/mcp" if self.transport == "http" else "ws://traefik:5555/mcp/ws"

    def execute(self, plan: RunPlan, targets: tuple[str, ...], workers: int) -> RunResult:
        """Run ``plan`` on ``workers`` client replicas (at most one per connection); merge exactly."""
        import docker.types

        replicas = max(1, min(workers, plan.ramp.max_connections))
        plan = replace(plan, target=self.overlay_target, connections=(), metrics_port=None, start_at=0.0)
        if self.transport == "http" and plan.protocol_version not in versions.STATELESS_VERSIONS:
            plan = replace(plan, protocol_version=versions.LATEST_STATELESS)
        run_id = f"run-{time.strftime('%H%M%S')}-{uuid.uuid4().hex[:6]}"
        order = control.order_env(plan, run_id, replicas, control.CONTROLLER_IN_STACK)
        ours = {*order, control.ENV_SLOT}
        started = time.monotonic()

        def update(service: Any) -> None:
            spec = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
            kept = [e for e in spec.get("Env") or [] if e.split("=", 1)[0] not in ours]
            env = [*kept, *(f"{k}={v}" for k, v in order.items()), f"{control.ENV_SLOT}={{{{.Task.Slot}}}}"]
            service.update(
                env=env,
                mode=docker.types.ServiceMode("replicated", replicas=replicas),
                update_config=docker.types.UpdateConfig(
                    parallelism=0, order="stop-first", failure_action="continue"
                ),
            )

        self.update_service(SCENARIO_SERVICE, update)
        expected = [f"{self.stack}_{SCENARIO_SERVICE}.{slot}" for slot in range(1, replicas + 1)]
        results = control.ControllerClient(self.controller)
        start_at = control.start_when_ready(
            results, run_id, expected, timeout=READY_TIMEOUT_S, describe=self._describe_tasks
        )
        ready_s = time.monotonic() - started
        self.current = (run_id, start_at)
        from pytest_mcpswarm.capacity import docker_stats
        from pytest_mcpswarm.capacity.observe import attribution_of

        # Server and client replicas' CPU and memory, side by side, as the local backend samples /proc.
        sampler = docker_stats.service_sampler(
            self.client, servers=f"{self.stack}_{SERVER_SERVICE}", clients=f"{self.stack}_{SCENARIO_SERVICE}",
            t0=start_at,
        ).start()  # fmt: skip
        try:
            messages = control.collect(
                results, run_id, expected, describe=self._describe_tasks,
                until_wall=start_at + plan.duration_s + plan.timeout_s + self.report_grace_s,
            )  # fmt: skip
        finally:
            self.current = None
            sampler.stop()
        run = merge_done(replace(plan, start_at=start_at), messages)
        self.last_attribution = attribution_of(run, sampler)
        from pytest_mcpswarm.swarm.crosscheck import cross_check

        check = cross_check(self.prometheus, run_id, run.snapshot.latency)
        self.last_run = {
            "run_id": run_id,
            "client_service": f"{self.stack}_{SCENARIO_SERVICE}",
            "client_replicas": replicas,
            "client_replicas_reported": len(messages),
            "reported": sorted(str(m.get("replica")) for m in messages),
            "target": self.overlay_target,
            "protocol_version": plan.protocol_version,
            "ready_s": round(ready_s, 2),
            "prometheus_check": check,
        }
        self.log(
            f"{run_id}: {len(messages)}/{replicas} replicas reported; Prometheus cross-check "
            f"{check['status']} ({check.get('reason', '')})"
        )
        return run

    def annotate(self, data: dict[str, Any]) -> None:
        """Add the last run's swarm facts to its report entry."""
        if self.last_run:
            data["swarm"] = self.last_run
            data["client_replicas_reported"] = self.last_run["client_replicas_reported"]
            self.last_run = {}
        if self.last_attribution:
            data["attribution"], self.last_attribution = self.last_attribution, {}

    # -- helpers --------------------------------------------------------------------------------

    def _images(self, known: Any, exists: Any) -> dict[str, str]:
        """Per image: the user's variable, else the upstream default if present, else the offline one."""
        images: dict[str, str] = {}
        for var, (upstream, offline) in known.items():
            if var == "MCPSWARM_BASE_IMAGE":
                continue
            images[var] = os.environ.get(var) or (upstream if exists(upstream) else offline)
        missing = [image for image in images.values() if not exists(image)]
        if missing:
            raise DeployError(
                f"image(s) {', '.join(missing)} are not on this node",
                fix="build them: `mcpswarm swarm images` (add --offline without a registry)",
            )
        return images

    def _check_stacks(self) -> None:
        for name, found in stack.stacks(self.client).items():
            owner, keep = found.get(L.OWNER, ""), found.get(L.KEEP) == "true"
            if name == self.stack and (keep or owner == L.this_owner() or L.owner_alive(owner) is False):
                continue  # ours to update in place: kept by an earlier session, this process's, or orphaned
            raise DeployError(
                f"stack {name} (owner {owner or '?'}) is deployed; its networks hold the VXLAN IDs "
                "this stack needs",
                fix=f"wait for it to finish, or remove it: mcpswarm swarm cleanup --yes --stack {name}",
            )

    def _service(self, short: str) -> Any:
        return self.client.services.get(f"{self.stack}_{short}")

    def update_service(self, short: str, change: Callable[[Any], None], attempts: int = 10) -> None:
        """``change(service)`` on a fresh read of the service, retried while Swarm reports the
        update "out of sequence" (a rolling update in progress bumps the service's version)."""
        import docker.errors

        for attempt in range(attempts):
            try:
                change(self._service(short))
                return
            except docker.errors.APIError as exc:
                if "out of sequence" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.2)

    def _shape(self) -> None:
        """Servers at the requested count, background clients at 0; wait until converged."""
        changed = False
        if self.server_replicas is not None:  # stack.scale: the SDK's would restart every server
            stack.scale(f"{self.stack}_{SERVER_SERVICE}", self.server_replicas)
            changed = True
        for short in BACKGROUND_SERVICES:
            service = self._service(short)
            if service.attrs["Spec"]["Mode"].get("Replicated", {}).get("Replicas", 0):
                stack.scale(f"{self.stack}_{short}", 0)
                changed = True
        if changed:
            stack.wait_converged(self.client, self.stack, timeout=self.deploy_timeout)

    def _wait_routed(self) -> None:
        import asyncio

        from pytest_mcpswarm.swarm import routing

        desired = int(self._service(SERVER_SERVICE).attrs["Spec"]["Mode"]["Replicated"]["Replicas"])
        expected = {f"{self.stack}_{SERVER_SERVICE}.{slot}" for slot in range(1, desired + 1)}
        self.servers = tuple(sorted(asyncio.run(routing.wait_routed(self.targets[0], expected))))

    def _describe_tasks(self, missing: Collection[str]) -> str:
        """The state of the tasks behind ``missing`` replica names (``<service>.<slot>``)."""
        try:
            service = self._service(SCENARIO_SERVICE)
            tasks = sorted(service.tasks(), key=lambda t: t["Status"].get("Timestamp", ""), reverse=True)
        except Exception as exc:
            return f"tasks unavailable: {exc}"
        parts = []
        for name in missing:
            slot = int(name.rsplit(".", 1)[1])
            task = next((t for t in tasks if t.get("Slot") == slot), None)
            if task is None:
                parts.append(f"{name}: no task")
                continue
            status = task["Status"]
            detail = status.get("Err") or status.get("Message") or ""
            parts.append(f"{name}: task {task['ID'][:12]} {status['State']} {detail}".strip())
        return "; ".join(parts)

    def _start_reaper(self) -> None:
        """A detached process that removes the stack if this one dies without tearing down."""
        if self.keep:
            return
        self._reaper = subprocess.Popen(
            [sys.executable, "-m", "pytest_mcpswarm.swarm.reaper", self.stack, str(os.getpid())],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip

    def _stop_reaper(self) -> None:
        reaper, self._reaper = self._reaper, None
        if reaper is not None and reaper.poll() is None:
            reaper.terminate()
            reaper.wait(timeout=10)
