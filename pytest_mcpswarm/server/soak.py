"""Memory soak of the reference server under connection churn (on demand, Linux).

``python -m pytest_mcpswarm.server.soak --minutes 10`` starts ``mcpswarm serve``
on loopback, drives it with the load engine's churn executor over WebSocket and
Streamable HTTP at once (connect, a few calls, close, repeat, on many client
connections), samples the server's resident memory and open descriptors from
``/proc`` every few seconds, and compares the end with the value right after
warm-up.  It prints one summary line and, with ``--json``, writes every sample.
Exit status 1 when RSS grew by the ``--max-growth`` fraction or more.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_mcpswarm.capacity import procfs
from pytest_mcpswarm.load.controller import RunResult, run_inprocess
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.load.requests import MethodSpec
from pytest_mcpswarm.load.shapes import Stage
from pytest_mcpswarm.report.jsonfile import write_json
from pytest_mcpswarm.server.launch import ServerProcess

METHODS = (
    MethodSpec("tools/call", {"name": "echo", "arguments": {"text": "soak"}}, 2.0, "text"),
    MethodSpec("resources/list", None, 1.0),
    MethodSpec("tools/list", None, 1.0),
)


def rss_bytes(pid: int) -> int:
    return procfs.process_rss_bytes(pid) or 0


def open_fds(pid: int) -> int:
    return procfs.open_fds(pid) or 0


@dataclass
class SoakReport:
    minutes: float
    warmup_s: float
    clients: int
    churn_calls: int
    rss_warm_bytes: int = 0
    rss_end_bytes: int = 0
    rss_max_bytes: int = 0
    fds_warm: int = 0
    fds_end: int = 0
    sessions_opened: int = 0
    requests_ok: int = 0
    requests_failed: int = 0
    samples: list[tuple[float, int, int]] = field(default_factory=list)

    @property
    def growth(self) -> float:
        if not self.rss_warm_bytes:
            return 0.0
        return (self.rss_end_bytes - self.rss_warm_bytes) / self.rss_warm_bytes

    def line(self) -> str:
        mib = 1024 * 1024
        return (
            f"soak {self.minutes:g} min, {self.clients} churning clients, {self.sessions_opened} sessions, "
            f"{self.requests_ok} ok / {self.requests_failed} failed: server RSS "
            f"{self.rss_warm_bytes / mib:.1f} MiB after {self.warmup_s:g}s warm-up -> "
            f"{self.rss_end_bytes / mib:.1f} MiB at the end ({self.growth:+.1%}; max "
            f"{self.rss_max_bytes / mib:.1f} MiB); fds {self.fds_warm} -> {self.fds_end}"
        )


def churn_plan(target: str, clients: int, seconds: float, churn_calls: int, think_s: float) -> RunPlan:
    return RunPlan(
        target=target,
        methods=METHODS,
        stages=(Stage(seconds, clients, 0.0),),
        start_connections=clients,
        executor="churn",
        churn_calls=churn_calls,
        think_time_s=think_s,
        timeout_s=5.0,
    )


async def soak(
    *, minutes: float, warmup_s: float, clients: int, churn_calls: int, think_s: float, every_s: float
) -> SoakReport:
    report = SoakReport(minutes, warmup_s, clients, churn_calls)
    seconds = minutes * 60.0
    with ServerProcess(["--workers", "1"]) as server:
        assert server.proc is not None
        pid = server.proc.pid
        half = max(1, clients // 2)
        runs = asyncio.gather(
            run_inprocess(churn_plan(server.ws_url, half, seconds, churn_calls, think_s)),
            run_inprocess(churn_plan(server.url, clients - half, seconds, churn_calls, think_s)),
        )
        t0 = time.monotonic()
        warm_taken = False
        while not runs.done():
            await asyncio.wait([runs], timeout=every_s)
            t = time.monotonic() - t0
            if runs.done():
                break
            rss, fds = rss_bytes(pid), open_fds(pid)
            report.samples.append((round(t, 1), rss, fds))
            report.rss_max_bytes = max(report.rss_max_bytes, rss)
            if not warm_taken and t >= warmup_s:
                report.rss_warm_bytes, report.fds_warm = rss, fds
                warm_taken = True
            report.rss_end_bytes, report.fds_end = rss, fds
        results: list[RunResult] = list(runs.result())
        # One more sample once every client is gone: what the server holds with nothing open.
        await asyncio.sleep(1.0)
        report.samples.append((round(time.monotonic() - t0, 1), rss_bytes(pid), open_fds(pid)))
    for result in results:
        outcomes = result.snapshot.outcomes
        report.sessions_opened += result.connections.get("opened", 0)
        report.requests_ok += outcomes.ok
        report.requests_failed += outcomes.errors + outcomes.timeouts + outcomes.not_sent
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pytest_mcpswarm.server.soak", description=__doc__)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=60.0, metavar="SECONDS")
    p.add_argument("--clients", type=int, default=40, help="churning connections, half WS, half HTTP")
    p.add_argument("--churn-calls", type=int, default=5, help="calls per connection before it closes")
    p.add_argument(
        "--think-ms", type=float, default=0.0, help="pause between calls of one client (default: 0)"
    )
    p.add_argument("--every", type=float, default=5.0, metavar="SECONDS", help="sampling period")
    p.add_argument("--max-growth", type=float, default=0.10, help="fail at or above this RSS growth")
    p.add_argument("--json", metavar="FILE", help="write the report and every sample here")
    args = p.parse_args(argv)
    if args.warmup >= args.minutes * 60:
        p.error("--warmup must be shorter than the run")
    import uvloop

    report = uvloop.run(
        soak(
            minutes=args.minutes,
            warmup_s=args.warmup,
            clients=args.clients,
            churn_calls=args.churn_calls,
            think_s=args.think_ms / 1000.0,
            every_s=args.every,
        )
    )
    print(report.line())
    if args.json:
        doc: dict[str, Any] = {**asdict(report), "growth": report.growth}
        write_json(args.json, doc)
    return 0 if report.growth < args.max_growth else 1


if __name__ == "__main__":
    sys.exit(main())
