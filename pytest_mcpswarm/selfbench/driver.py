"""Run one of our Python drivers as a pinned child process and read back its JSON line.

A driver runs in its own process so ``taskset`` can put it on the client
core, away from the harness and the server.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from typing import Any

import orjson

from pytest_mcpswarm.errors import DriverError
from pytest_mcpswarm.selfbench.procs import die_with_parent


def run_driver(
    module: str, args: list[str], prefix: list[str], *, budget: float
) -> tuple[dict[str, Any], str]:
    """(decoded JSON result, the command as text); the last stdout line must be the JSON."""
    command = [*prefix, sys.executable, "-m", module, *args]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=budget,
            check=False,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    except subprocess.TimeoutExpired:
        raise DriverError(f"{module} did not finish within {budget:.0f} s") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise DriverError(
            f"{module} exited with status {done.returncode}: {said[-1] if said else 'no output'}"
        )
    result = orjson.loads(lines[-1])
    if "error" in result:
        raise DriverError(f"{module}: {result['error']}")
    shown = shlex.join([*prefix, "python", "-m", module, *args])
    return result, shown


def percentile_ms(sorted_ns: list[int], q: float) -> float | None:
    """Nearest-rank percentile of sorted nanosecond samples, in ms."""
    if not sorted_ns:
        return None
    rank = max(0, min(len(sorted_ns) - 1, round(q / 100 * len(sorted_ns) + 0.5) - 1))
    return sorted_ns[rank] / 1e6
