"""Sample server, client and network resources side by side while a run goes (a background thread).

- **server**: CPU and RSS of the server's processes read from /proc when the
  server is local (``server_pids``), else ``process_cpu_seconds_total`` and
  ``process_resident_memory_bytes`` from its ``/metrics``; open connections
  from ``mcpswarm_server_active_connections`` when it exports them;
- **client**: every process below ``client_root`` (this process and its
  generator workers), minus the server's own process tree;
- **network**: bytes per second through ``iface`` from /sys/class/net.

CPU is in cores (1.0 = one core busy all the time); ``*_cpu_max`` is the
busiest single process, which is what saturates first for single-threaded
asyncio processes.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pytest_mcpswarm.capacity import procfs


@dataclass
class _Cpu:
    """Per-process CPU deltas between two samples.

    The interval is timed here, next to the reads, not at the top of the sampling loop: the
    scan of /proc before it takes a varying time on a busy machine, and charging that jitter to
    the interval made one busy core read as 0.5 and then 1.25 cores in the next sample.
    """

    last: dict[int, float] = field(default_factory=dict)
    last_t: float | None = None

    def step(self, pids: set[int]) -> tuple[float, float, int]:
        """(total cores, busiest process's cores, RSS bytes) over ``pids`` since the last call."""
        total = busiest = 0.0
        rss = 0
        now: dict[int, float] = {}
        t = time.monotonic()
        dt = 0.0 if self.last_t is None else t - self.last_t
        self.last_t = t
        for pid in pids:
            cpu = procfs.process_cpu_s(pid)
            if cpu is None:
                continue
            now[pid] = cpu
            rss += procfs.process_rss_bytes(pid) or 0
            if pid in self.last and dt > 0:
                used = max(0.0, cpu - self.last[pid]) / dt
                total += used
                busiest = max(busiest, used)
        self.last = now
        return total, busiest, rss


class ResourceSampler:
    """``with ResourceSampler(...) as s: run(); s.samples`` -- one dict per ``interval_s``."""

    def __init__(
        self,
        *,
        server_pids: tuple[int, ...] = (),
        metrics_url: str | None = None,
        client_root: int | None = None,
        iface: str | None = None,
        interval_s: float = 0.5,
        t0: float | None = None,
    ) -> None:
        self.server_pids = server_pids
        self.metrics_url = metrics_url
        self.client_root = os.getpid() if client_root is None else client_root
        self.iface = iface
        self.interval_s = interval_s
        #: Wall time that sample times are measured from (the run's t=0).
        self.t0 = t0
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mcpswarm-sampler", daemon=True)

    @property
    def server_source(self) -> str | None:
        """``proc`` for local server processes, ``metrics`` for a scraped ``/metrics``, else None."""
        return "proc" if self.server_pids else ("metrics" if self.metrics_url else None)

    def __enter__(self) -> ResourceSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _server_pids(self, parents: dict[int, int]) -> set[int]:
        found = set(self.server_pids)
        for pid in self.server_pids:
            found |= procfs.descendants(pid, parents)
        return found

    def _loop(self) -> None:
        if self.t0 is None:
            self.t0 = time.time()
        server_cpu, client_cpu = _Cpu(), _Cpu()
        last_t = time.monotonic()
        last_net = procfs.interface_bytes(self.iface) if self.iface else None
        last_scrape: tuple[float, float] | None = None
        first = True
        while True:
            now = time.monotonic()
            dt = now - last_t
            last_t = now
            parents = procfs.parent_map()
            servers = self._server_pids(parents)
            clients = ({self.client_root} | procfs.descendants(self.client_root, parents)) - servers
            sample: dict[str, Any] = {"t": round(time.time() - self.t0, 3)}
            c_total, c_max, c_rss = client_cpu.step(clients)
            sample |= {"client_cpu": c_total, "client_cpu_max": c_max, "client_rss_mb": c_rss / 2**20}
            metrics = procfs.scrape(self.metrics_url) if self.metrics_url else {}
            if servers:
                s_total, s_max, s_rss = server_cpu.step(servers)
                sample |= {"server_cpu": s_total, "server_cpu_max": s_max, "server_rss_mb": s_rss / 2**20}
            elif "process_cpu_seconds_total" in metrics:
                cpu = metrics["process_cpu_seconds_total"]
                used = (
                    None if last_scrape is None else max(0.0, cpu - last_scrape[0]) / (now - last_scrape[1])
                )
                last_scrape = (cpu, now)
                rss = metrics.get("process_resident_memory_bytes", 0.0) / 2**20
                sample |= {"server_cpu": used, "server_cpu_max": used, "server_rss_mb": rss}
            if "mcpswarm_server_active_connections" in metrics:
                sample["server_connections"] = metrics["mcpswarm_server_active_connections"]
            if self.iface:
                net = procfs.interface_bytes(self.iface)
                if net is not None and last_net is not None and dt > 0:
                    sample["net_tx_bps"] = (net[0] - last_net[0]) * 8 / dt
                    sample["net_rx_bps"] = (net[1] - last_net[1]) * 8 / dt
                last_net = net
            if not first:  # the first reading has no interval to be a rate over
                self.samples.append(sample)
            first = False
            if self._stop.wait(self.interval_s):
                return
