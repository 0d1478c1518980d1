"""``mcpswarm bench``: the whole benchmark suite with JSON and HTML reports, on any backend.

Replaces the erlmcp rig's ``run_benchmarks.sh`` (baseline, connection flood, message
bombing, then the reports).  A thin shell over pytest: it runs ``benchmarks/`` with the
plugin's options and writes ``OUT/benchmark_report.json`` and ``OUT/benchmark_report.html``
(self-contained).  Arguments after ``--`` go to pytest unchanged::

    mcpswarm bench --quick                               # local reference servers, ~2 min
    mcpswarm bench --backend swarm --swarm-ci --quick    # the Docker Swarm stack (docs/SWARM.md)
    mcpswarm bench --target ws://127.0.0.1:8080/mcp/ws   # any MCP server
    mcpswarm bench -- -k baseline --mcpswarm-set baseline.clients=50
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.options import BACKENDS

#: ``--quick``: the README's scaled suite (about 2 minutes of load).
QUICK_TIME_SCALE = "0.05"
QUICK_LOAD_SCALE = "0.1"


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "bench", help="run the benchmark suite with JSON and HTML reports",
        description="Run the benchmark suite (benchmarks/: baseline, connection flood, message bombing, "
        "one test per profile) with pytest on any backend, and write a JSON and a self-contained HTML "
        "report.  Arguments after -- go to pytest.",
    )  # fmt: skip
    p.add_argument("--backend", choices=BACKENDS, help="local (default), swarm or external")
    p.add_argument("--target", help="the server to test (implies the external backend)")
    p.add_argument("--transport", choices=("ws", "http"), help="ws (default) or http")
    p.add_argument("--out", type=Path, default=Path("reports"), help="report directory (default: reports)")
    p.add_argument(
        "--suite", type=Path, help="the benchmark tests (default: ./benchmarks, else the checkout's)"
    )
    quick = f"time scale {QUICK_TIME_SCALE} and load scale {QUICK_LOAD_SCALE} (about 2 minutes)"
    p.add_argument("--quick", action="store_true", help=quick)
    p.add_argument("--time-scale", help="--mcpswarm-time-scale")
    p.add_argument("--load-scale", help="--mcpswarm-load-scale")
    p.add_argument("--server-replicas", help="--mcpswarm-server-replicas")
    p.add_argument("--workers", help="--mcpswarm-workers (swarm: client replicas)")
    p.add_argument("--save", help="--mcpswarm-save NAME")
    p.add_argument("--compare", help="--mcpswarm-compare NAME|PATH")
    p.add_argument("--compare-fail", help="--mcpswarm-compare-fail EXPR")
    p.add_argument("--swarm-ci", action="store_true", help="swarm: the 2-core CI sizing")
    p.add_argument("--swarm-init", action="store_true", help="swarm: run swarm init when inactive")
    p.add_argument("--keep-stack", action="store_true", help="leave the stack up afterwards")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then arguments for pytest")
    p.set_defaults(func=run)


def suite_path(given: Path | None) -> Path:
    if given is not None:
        if not given.exists():
            raise UsageError(
                f"--suite {given} does not exist", fix="give the directory of the benchmark tests"
            )
        return given
    here = Path("benchmarks")
    if here.is_dir():
        return here
    from pytest_mcpswarm.swarm.images import project_root

    return project_root() / "benchmarks"


def pytest_command(args: argparse.Namespace) -> list[str]:
    """The pytest command line ``args`` stands for."""
    out: Path = args.out
    cmd = [sys.executable, "-m", "pytest", str(suite_path(args.suite)), "-p", "no:cacheprovider",
           "--mcpswarm-json", str(out / "benchmark_report.json"),
           "--html", str(out / "benchmark_report.html"), "--self-contained-html"]  # fmt: skip
    time_scale = args.time_scale or (QUICK_TIME_SCALE if args.quick else None)
    load_scale = args.load_scale or (QUICK_LOAD_SCALE if args.quick else None)
    for flag, value in (
        ("--mcpswarm-backend", args.backend), ("--mcpswarm-target", args.target),
        ("--mcpswarm-transport", args.transport), ("--mcpswarm-time-scale", time_scale),
        ("--mcpswarm-load-scale", load_scale), ("--mcpswarm-server-replicas", args.server_replicas),
        ("--mcpswarm-workers", args.workers), ("--mcpswarm-save", args.save),
        ("--mcpswarm-compare", args.compare), ("--mcpswarm-compare-fail", args.compare_fail),
    ):  # fmt: skip
        if value:
            cmd += [flag, str(value)]
    for flag, on in (("--mcpswarm-swarm-ci", args.swarm_ci), ("--mcpswarm-swarm-init", args.swarm_init),
                     ("--mcpswarm-keep-stack", args.keep_stack)):  # fmt: skip
        if on:
            cmd.append(flag)
    extra = list(args.pytest_args)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    return cmd + extra


def run(args: argparse.Namespace) -> int:
    cmd = pytest_command(args)
    args.out.mkdir(parents=True, exist_ok=True)
    print("mcpswarm bench: " + " ".join(cmd[1:]), flush=True)
    code = subprocess.run(cmd, env=dict(os.environ), check=False).returncode
    for name in ("benchmark_report.json", "benchmark_report.html"):
        path = args.out / name
        if path.is_file():
            print(f"mcpswarm bench: {path}")
    return code
