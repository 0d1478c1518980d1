"""Driver: Locust's FastHttpUser with its configuration pinned here; prints one JSON line.

``python -m pytest_mcpswarm.selfbench.client_locust '{"url": ..., "warmup": 2, "duration": 5}'``

Pinned: one process (Locust as a library, a local runner), ``USERS`` users
spawned at once, ``constant(0)`` wait, each POSTing the selfbench stateless
``tools/call`` with the headers the revision requires.  Requests and CPU
time (``getrusage``) are read after warm-up and at the end, so start-up and
imports count for neither Locust nor our engine.
"""

from __future__ import annotations

import importlib.util
import logging
import resource
import sys
import time
from typing import Any

import orjson

from pytest_mcpswarm.selfbench.request import ToolCall

USERS = 10
NOT_INSTALLED = "locust is not installed (pip install locust): the Locust comparison row is skipped"


def available() -> bool:
    return importlib.util.find_spec("locust") is not None


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def drive(url: str, warmup: float, duration: float) -> dict[str, Any]:
    import gevent  # type: ignore[import-untyped]  # comes with locust
    from locust import FastHttpUser, constant, task
    from locust.env import Environment

    logging.getLogger("locust").setLevel(logging.ERROR)
    call = ToolCall()
    body, headers = call.body().decode(), call.http_headers()
    base, _, path = url.partition("/mcp")
    path = "/mcp" + path

    class McpUser(FastHttpUser):
        host = base
        wait_time = constant(0)

        @task
        def tools_call(self) -> None:
            self.client.post(path, data=body, headers=headers)

    env = Environment(user_classes=[McpUser])
    runner = env.create_local_runner()
    runner.start(USERS, spawn_rate=USERS)
    gevent.sleep(warmup)
    stats = env.stats.total
    n0, f0, c0, t0 = stats.num_requests, stats.num_failures, _cpu(), time.perf_counter()
    gevent.sleep(duration)
    n1, f1, c1, t1 = stats.num_requests, stats.num_failures, _cpu(), time.perf_counter()
    runner.quit()
    return {
        "requests": n1 - n0,
        "failures": f1 - f0,
        "seconds": t1 - t0,
        "cpu_s": c1 - c0,
        "p50_ms": stats.get_response_time_percentile(0.5),
        "p99_ms": stats.get_response_time_percentile(0.99),
    }


def main() -> int:
    a = orjson.loads(sys.argv[1])
    try:
        out = drive(a["url"], float(a["warmup"]), float(a["duration"]))
        if out["failures"]:
            out = {"error": f"locust: {out['failures']} failed requests out of {out['requests']}"}
    except Exception as exc:  # one line for the harness
        out = {"error": f"locust: {type(exc).__name__}: {exc}"}
    sys.stdout.buffer.write(orjson.dumps(out) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
