"""Readings of a Linux host: process CPU and memory from /proc, interface bytes from /sys, tbf rates from tc.

Every reader returns plain numbers (or None when the thing is gone or not
readable) and never raises for a vanished process: processes end while a
sampler watches them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Final

CLK_TCK: Final = os.sysconf("SC_CLK_TCK")
_RATE_RE: Final = re.compile(r"\brate\s+([0-9.]+)([KMG]?)(bit|bps)\b", re.IGNORECASE)
_MULT: Final = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9}


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` (all its threads) so far."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (comm) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def process_rss_bytes(pid: int) -> int | None:
    """Resident set size of ``pid`` (VmRSS)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def open_fds(pid: int) -> int | None:
    """Open file descriptors of ``pid``."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def parent_map() -> dict[int, int]:
    """``pid -> ppid`` of every process visible in /proc."""
    out: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        out[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    return out


def descendants(root: int, parents: dict[int, int] | None = None) -> set[int]:
    """Every process below ``root`` (not ``root`` itself)."""
    parents = parent_map() if parents is None else parents
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def interface_bytes(iface: str) -> tuple[int, int] | None:
    """``(tx_bytes, rx_bytes)`` of a network interface, from /sys/class/net."""
    base = Path("/sys/class/net", iface, "statistics")
    try:
        return int((base / "tx_bytes").read_text()), int((base / "rx_bytes").read_text())
    except (OSError, ValueError):
        return None


def parse_tc_rate(text: str) -> float | None:
    """Bits per second of the first ``rate`` in ``tc qdisc show`` output (tbf, htb), or None."""
    m = _RATE_RE.search(text)
    if not m:
        return None
    bits = float(m.group(1)) * _MULT[m.group(2).upper()]
    return bits * 8 if m.group(3).lower() == "bps" else bits


def tc_rate_bits_per_s(iface: str) -> float | None:
    """The rate of a shaping qdisc (tbf, htb) on ``iface``'s egress, or None."""
    tc = shutil.which("tc")
    if tc is None:
        return None
    try:
        out = subprocess.run(
            [tc, "qdisc", "show", "dev", iface], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_tc_rate(out)


def link_speed_bits_per_s(iface: str) -> float | None:
    """The negotiated link speed (each direction of a full-duplex link), or None (virtual links)."""
    try:
        speed = int(Path("/sys/class/net", iface, "speed").read_text())
    except (OSError, ValueError):
        return None
    return speed * 1e6 if speed > 0 else None


def scrape(url: str, timeout: float = 2.0) -> dict[str, float]:
    """Sum of every sample of each metric name on a Prometheus text page (labels dropped); {} on failure."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_part, _, value = line.rpartition(" ")
        name = name_part.split("{", 1)[0].strip()
        try:
            out[name] = out.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return out
