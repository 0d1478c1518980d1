"""Where each process runs, and the machine facts a result must be read with.

Servers share one core and every client gets another, so a figure is "per
server core" and the client never steals the server's cycles.  Pinning is
done with ``taskset`` in front of the command, which makes the placement
visible in ``ps`` and in the printed commands.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from importlib import metadata


@dataclass(frozen=True, slots=True)
class Placement:
    """Command prefixes that pin clients and servers; empty prefixes mean unpinned."""

    client_core: int | None
    server_core: int | None
    note: str | None = None

    @property
    def pinned(self) -> bool:
        return self.server_core is not None

    def client_prefix(self) -> list[str]:
        return [] if self.client_core is None else ["taskset", "-c", str(self.client_core)]

    def server_prefix(self) -> list[str]:
        return [] if self.server_core is None else ["taskset", "-c", str(self.server_core)]


def plan() -> Placement:
    """Client on the first allowed core, servers on the second; unpinned if that is impossible."""
    cores = sorted(os.sched_getaffinity(0))
    if shutil.which("taskset") is None:
        return Placement(None, None, "taskset not found (apt-get install util-linux): running unpinned")
    if len(cores) < 2:
        return Placement(None, None, f"only {len(cores)} core available: running unpinned")
    return Placement(cores[0], cores[1])


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs, from the first line of /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def background_load(seconds: float = 0.5) -> float | None:
    """Share of all CPUs busy while we are idle: other workloads skew every figure we take."""
    try:
        busy0, total0 = _cpu_times()
        time.sleep(seconds)
        busy1, total1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    return (busy1 - busy0) / (total1 - total0) if total1 > total0 else None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info(placement: Placement) -> dict[str, object]:
    """What a reader needs to compare two result files."""
    return {
        "cpu_model": _cpu_model(),
        "cpus_online": os.cpu_count(),
        "cpus_allowed": len(os.sched_getaffinity(0)),
        "client_core": placement.client_core,
        "server_core": placement.server_core,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "mcp": _version("mcp"),
        "uvicorn": _version("uvicorn"),
        "picows": _version("picows"),
    }


#: Share of the CPUs busy before a run above which the figures are flagged as noisy.
BUSY_WARNING = 0.10


def prepare(notes: list[str]) -> tuple[Placement, dict[str, object]]:
    """Placement and machine facts for a benchmark run; problems worth knowing go to ``notes``."""
    placement = plan()
    if placement.note:
        notes.append(placement.note)
    machine = machine_info(placement)
    load = background_load()
    machine["background_cpu_busy"] = load
    if load is not None and load > BUSY_WARNING:
        notes.append(
            f"warning: {load:.0%} of the CPUs were busy with other processes before the run; "
            "figures will be low and noisy"
        )
    return placement, machine
