"""The control plane of a swarm run: orders to the client replicas, the start, the results.

The controller (pytest on the host, or the same code in the test-controller service)
updates the scenario's client service with an *order* in its environment: the scenario's
``RunPlan`` as JSON, a run id, the number of replicas and the results endpoint.  Every
replica of that service then:

1. takes its share of the connections, ``plan.split(replicas)[slot - 1]``, where ``slot`` is
   Swarm's ``{{.Task.Slot}}`` (1..N): the same round-robin deal as local worker processes;
2. says it is ready (``POST /runs/RUN/ready/REPLICA`` on the test-controller) and polls
   ``GET /runs/RUN`` for the shared start time;
3. runs the same stage plan, ramps included, from that start time;
4. posts its ``done`` message, the very dict a local worker prints
   (``load.worker.done_message``: snapshot, gauges, schedule lag), to
   ``POST /results/RUN/REPLICA``.

The controller waits until every expected replica is ready, posts ``start_at`` (a shared
wall-clock time: the nodes' clocks must agree, as NTP keeps them), then fetches the
``done`` messages and merges them with ``load.controller.merge_done``, the local backend's
code.  A replica that is not ready or never reports is an error that names it.

The start goes through the controller rather than the environment because a service update
takes a few seconds to a minute (image, health checks): a time written into the order in
advance would be missed, and late sends are dropped as ``not_sent``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pytest_mcpswarm.errors import RunControlError, UsageError
from pytest_mcpswarm.load.plan import RunPlan

ENV_PLAN: Final = "MCPSWARM_RUN_PLAN"
ENV_RUN: Final = "MCPSWARM_RUN_ID"
ENV_REPLICAS: Final = "MCPSWARM_RUN_REPLICAS"
ENV_CONTROLLER: Final = "MCPSWARM_CONTROLLER_URL"
ENV_SLOT: Final = "MCPSWARM_SLOT"
ENV_REPLICA: Final = "MCPSWARM_REPLICA"
#: Inside the overlay: the test-controller service's results endpoint.
CONTROLLER_IN_STACK: Final = "http://test-controller:8090"


@dataclass(frozen=True)
class Order:
    """What one client replica reads from its environment."""

    plan: RunPlan
    run_id: str
    replicas: int
    slot: int
    replica: str
    controller: str

    def env(self) -> dict[str, str]:
        """The service's environment for this order (``slot`` and ``replica`` come from Swarm)."""
        return order_env(self.plan, self.run_id, self.replicas, self.controller)

    def share(self) -> RunPlan:
        """This replica's connections of the plan."""
        parts = self.plan.split(self.replicas)
        if not 1 <= self.slot <= len(parts):
            raise UsageError(
                f"{ENV_SLOT}={self.slot} is outside 1..{len(parts)} for a plan of "
                f"{self.plan.ramp.max_connections} connections over {self.replicas} replicas",
                fix="scale the client service to at most as many replicas as the plan has connections",
            )
        return parts[self.slot - 1]


def order_env(plan: RunPlan, run_id: str, replicas: int, controller: str) -> dict[str, str]:
    return {
        ENV_PLAN: json.dumps(plan.to_dict(), separators=(",", ":")),
        ENV_RUN: run_id,
        ENV_REPLICAS: str(replicas),
        ENV_CONTROLLER: controller,
    }


def order_from_env(env: Mapping[str, str]) -> Order | None:
    """The order in ``env``, or None when the container runs without one (plain load)."""
    run_id = env.get(ENV_RUN, "").strip()
    if not run_id:
        return None
    try:
        plan = RunPlan.from_dict(json.loads(env[ENV_PLAN]))
        replicas = int(env[ENV_REPLICAS])
        slot = int(env[ENV_SLOT])
    except (KeyError, ValueError, TypeError) as exc:
        raise UsageError(
            f"the run order in the environment is incomplete or malformed: {exc!r}",
            fix=f"set {ENV_PLAN}, {ENV_REPLICAS} and {ENV_SLOT}={{{{.Task.Slot}}}} along with {ENV_RUN}",
        ) from None
    return Order(
        plan=plan,
        run_id=run_id,
        replicas=replicas,
        slot=slot,
        replica=env.get(ENV_REPLICA, "").strip() or f"replica.{slot}",
        controller=env.get(ENV_CONTROLLER, "").strip() or CONTROLLER_IN_STACK,
    )


class ControllerClient:
    """The results endpoint over HTTP (blocking; the controller and the replicas share it)."""

    def __init__(self, base: str, *, timeout: float = 10.0) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: object | None = None) -> Any:
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read())

    def ready(self, run: str, replica: str) -> None:
        self._call("POST", f"/runs/{run}/ready/{replica}", {})

    def start(self, run: str, start_at: float) -> None:
        self._call("POST", f"/runs/{run}/start", {"start_at": start_at})

    def state(self, run: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/runs/{run}"))

    def reported(self, run: str) -> list[str]:
        return list(self._call("GET", f"/results/{run}")["replicas"])

    def result(self, run: str, replica: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/results/{run}/{replica}"))

    def post_result(self, run: str, replica: str, doc: dict[str, Any]) -> None:
        self._call("POST", f"/results/{run}/{replica}", doc)


def retrying(action: Callable[[], Any], *, until: float, pause: float = 0.5) -> Any:
    """``action()``, retried on connection errors until the monotonic time ``until``."""
    while True:
        try:
            return action()
        except (urllib.error.URLError, OSError, ValueError):
            if time.monotonic() >= until:
                raise
            time.sleep(pause)


Describe = Callable[[Collection[str]], str]


def start_when_ready(
    client: ControllerClient, run: str, expected: Collection[str], *, timeout: float,
    lead_s: float = 1.0, describe: Describe = lambda missing: "",
) -> float:  # fmt: skip
    """Wait until every replica in ``expected`` is ready, then post and return the start time."""
    deadline = time.monotonic() + timeout
    ready: set[str] = set()
    while not set(expected) <= ready:
        if time.monotonic() >= deadline:
            missing = sorted(set(expected) - ready)
            detail = describe(missing)
            raise RunControlError(
                f"run {run}: client replica(s) {', '.join(missing)} not ready within {timeout:.0f} s"
                + (f" ({detail})" if detail else "")
            )
        with contextlib.suppress(urllib.error.URLError, OSError, ValueError):
            ready = set(client.state(run)["ready"])
        if not set(expected) <= ready:
            time.sleep(0.25)
    start_at = time.time() + lead_s
    retrying(lambda: client.start(run, start_at), until=time.monotonic() + 10)
    return start_at


def collect(
    client: ControllerClient, run: str, expected: Collection[str], *, until_wall: float,
    describe: Describe = lambda missing: "",
) -> list[dict[str, Any]]:  # fmt: skip
    """Every expected replica's ``done`` message, in replica order; missing ones raise, named."""
    reported: set[str] = set()
    while True:
        with contextlib.suppress(urllib.error.URLError, OSError, ValueError):
            reported = set(client.reported(run))
        if set(expected) <= reported or time.time() >= until_wall:
            break
        time.sleep(0.5)
    missing = sorted(set(expected) - reported)
    if missing:
        detail = describe(missing)
        raise RunControlError(
            f"run {run}: client replica(s) {', '.join(missing)} never reported their results"
            + (f" ({detail})" if detail else "")
        )
    messages: list[dict[str, Any]] = [
        retrying(functools.partial(client.result, run, name), until=time.monotonic() + 10)
        for name in sorted(expected)
    ]
    failed = [m for m in messages if m.get("type") != "done"]
    if failed:
        raise RunControlError(
            "; ".join(f"client replica {m.get('replica', '?')}: {m.get('message', m)}" for m in failed),
            fix="the replica's message says what went wrong",
        )
    return messages
