"""Server and generator resources of containers from the Docker stats API: the swarm backend's sampler.

The samples have the shape ``sampler.ResourceSampler`` gives on local runs
(``t``, ``server_cpu``, ``server_cpu_max``, ``server_rss_mb`` and the
``client_*`` trio), so ``attribution.attribute`` and the report's resource
charts work unchanged.  One container is one replica; its CPU is every
process in it, and ``*_cpu_max`` is the busiest replica (the server and
client images run one asyncio process each, so a replica saturates at one
core as a process does).  A replica with a CPU limit below one core
(``deploy.resources.limits.cpus: "0.5"``) saturates at its limit, so each
sample also has ``*_cpu_share_max``, the highest share of its ceiling (one
core, or its limit when lower) any replica used, which the verdict reads
when present; ``*_cpu_ceiling``, that replica's ceiling in cores; and
``*_throttled_max``, the highest share of CFS periods in which a replica
was held back by its limit.

Why the Docker stats API rather than node-exporter or cAdvisor:

- node-exporter reports a *node*: on one node servers, generators, Traefik
  and Prometheus share it, so its CPU cannot say whose CPU it was;
- cAdvisor is per container, but it is one more privileged service to
  deploy (it mounts /sys, /var/lib/docker and /dev/kmsg), its image cannot
  be built offline here, and it only feeds Prometheus, whose default 15 s
  scrape is too coarse for a verdict that needs two samples in a row;
- the stats API is the same cgroup counters cAdvisor reads, per container,
  from the engine the backend already talks to, for any server image (erlmcp
  exports no ``process_cpu_seconds_total``).  ``one-shot`` (API 1.41)
  answers at once instead of after the two cycles (2 s) of the plain form, so
  the rate is our own delta between two readings.

The engine reads a container's cgroup at most once a second (a one-shot read
sooner waits for the next tick; measured on Docker 20.10), so samples here
are 1 s apart, not the 0.5 s of /proc: a saturation needs two of them, 2 s.

Its limit: one engine sees the containers of its own node.  On a multi-node
swarm, replicas on other nodes are not read (``*_replicas`` says how many
were); read their engines, or Prometheus, there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

#: The label Swarm puts on every task's container: ``<stack>_<service>``.
SERVICE_LABEL: Final = "com.docker.swarm.service.name"


def cpu_cores(stats: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> float | None:
    """Cores a container used between ``previous`` (an earlier ``cpu_stats``) and this reading.

    Without ``previous``, the reading's own ``precpu_stats`` (filled by the
    two-cycle form, empty in a one-shot reading: then None, there is no
    interval yet).  As ``docker stats`` computes it: the container's CPU
    nanoseconds over the host's, times the online CPUs (``online_cpus``,
    else the length of ``percpu_usage``).  None when a counter went
    backwards (a restarted container) or no host time passed.
    """
    now = stats.get("cpu_stats") or {}
    before = previous if previous is not None else stats.get("precpu_stats") or {}
    try:
        used = now["cpu_usage"]["total_usage"] - before["cpu_usage"]["total_usage"]
        host = now["system_cpu_usage"] - before["system_cpu_usage"]
    except (KeyError, TypeError):
        return None
    if used < 0 or host <= 0:
        return None
    cpus = now.get("online_cpus") or len(now["cpu_usage"].get("percpu_usage") or ()) or 1
    return float(used) / float(host) * float(cpus)


def throttled_share(stats: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> float | None:
    """Share of the CFS periods since ``previous`` (an earlier ``cpu_stats``, else ``precpu_stats``)
    in which the container hit its CPU limit; None without a limit (no periods) or an interval."""
    earlier = previous if previous is not None else stats.get("precpu_stats") or {}
    if "system_cpu_usage" not in earlier:  # a one-shot reading's empty precpu_stats: no interval
        return None
    try:
        now, before = stats["cpu_stats"]["throttling_data"], earlier["throttling_data"]
        periods = now["periods"] - before["periods"]
        throttled = now["throttled_periods"] - before["throttled_periods"]
    except (KeyError, TypeError):
        return None
    return float(throttled) / float(periods) if periods > 0 and throttled >= 0 else None


def cpu_limit(attrs: Mapping[str, Any]) -> float | None:
    """A container's CPU limit in cores (``--cpus``, Swarm's ``limits.cpus``, or a CFS quota), or None."""
    host = attrs.get("HostConfig") or {}
    if host.get("NanoCpus"):
        return float(host["NanoCpus"]) / 1e9
    quota = host.get("CpuQuota") or 0
    if quota > 0:
        return float(quota) / float(host.get("CpuPeriod") or 100_000)
    return None


def memory_bytes(stats: Mapping[str, Any]) -> int | None:
    """A container's memory without its page cache, comparable to a process's RSS on the local side.

    cgroup v1: ``usage - total_cache``; cgroup v2: ``usage - file``.  (``docker
    stats`` subtracts only the *inactive* file pages, so it shows active page
    cache too; the local sampler reads VmRSS, which has none.)
    """
    memory = stats.get("memory_stats") or {}
    usage = memory.get("usage")
    if usage is None:
        return None
    detail = memory.get("stats") or {}
    for key in ("total_cache", "cache", "file", "inactive_file"):
        if key in detail and detail[key] <= usage:
            return int(usage - detail[key])
    return int(usage)


def label_filter(labels: Mapping[str, str]) -> dict[str, list[str]]:
    """``{"label": ["k=v", ...]}``: the containers carrying every one of ``labels``."""
    return {"label": [f"{k}={v}" for k, v in labels.items()]}


class DockerStatsSampler:
    """``with DockerStatsSampler(client, servers={...}) as s: run(); s.samples`` -- one dict per interval.

    ``servers`` and ``clients`` are label sets selecting the running
    containers of each side, listed again at every sample (replicas come
    and go).  ``client`` is a docker SDK ``DockerClient``.
    """

    iface: str | None = None
    server_source = "docker"

    def __init__(
        self,
        client: Any,
        *,
        servers: Mapping[str, str],
        clients: Mapping[str, str] | None = None,
        interval_s: float = 1.0,
        t0: float | None = None,
        parallel: int = 10,
    ) -> None:
        self.client = client
        self.servers = dict(servers)
        self.clients = dict(clients) if clients else None
        self.interval_s = interval_s
        #: Wall time that sample times are measured from (the run's t=0).
        self.t0 = t0
        self.samples: list[dict[str, Any]] = []
        #: Readings that failed (a container gone mid-read, an engine error): skipped, counted.
        self.failed_reads = 0
        self._parallel = parallel
        self._one_shot: bool | None = True
        self._last: dict[str, Mapping[str, Any]] = {}
        self._limits: dict[str, float | None] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mcpswarm-docker-stats", daemon=True)

    def start(self) -> DockerStatsSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def __enter__(self) -> DockerStatsSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- reading ----------------------------------------------------------------------------------

    def _containers(self, labels: Mapping[str, str]) -> list[Any]:
        import docker.errors

        try:
            return list(self.client.containers.list(filters=label_filter(labels)))
        except (docker.errors.DockerException, OSError):  # requests' errors are OSErrors
            self.failed_reads += 1
            return []

    def _read(self, container: Any) -> dict[str, Any] | None:
        import docker.errors

        try:
            if container.id not in self._limits:  # a listing has no HostConfig: inspect once
                self._limits[container.id] = cpu_limit(self.client.api.inspect_container(container.id))
            try:
                stats: dict[str, Any] = self.client.api.stats(
                    container.id, stream=False, one_shot=self._one_shot
                )
            except docker.errors.InvalidVersion:  # an engine older than API 1.41: two-cycle reads
                self._one_shot = None
                stats = self.client.api.stats(container.id, stream=False)
        except (docker.errors.DockerException, OSError):  # gone mid-read, or the engine hiccuped
            self.failed_reads += 1
            return None
        return stats

    def _side(
        self, containers: Iterable[Any], readings: Mapping[str, dict[str, Any] | None]
    ) -> dict[str, Any]:
        """``cpu`` (sum), ``cpu_max`` (busiest), ``cpu_share_max``, ``rss_mb`` (sum), ``replicas``."""
        cores: list[float] = []
        shares: list[tuple[float, float]] = []
        throttled: list[float] = []
        memory = 0
        replicas = 0
        for container in containers:
            stats = readings.get(container.id)
            if stats is None:
                continue
            replicas += 1
            used = cpu_cores(stats, self._last.get(container.id))
            held = throttled_share(stats, self._last.get(container.id))
            if held is not None:
                throttled.append(held)
            self._last[container.id] = stats.get("cpu_stats") or {}
            if used is not None:
                cores.append(used)
                ceiling = min(1.0, self._limits.get(container.id) or 1.0)
                shares.append((used / ceiling, ceiling))
            memory += memory_bytes(stats) or 0
        return {
            "cpu": sum(cores) if cores else None,
            "cpu_max": max(cores) if cores else None,
            "cpu_share_max": max(shares)[0] if shares else None,
            "cpu_ceiling": max(shares)[1] if shares else None,
            "throttled_max": max(throttled) if throttled else None,
            "rss_mb": memory / 2**20,
            "replicas": replicas,
        }

    def sample_once(self, pool: ThreadPoolExecutor | None = None) -> dict[str, Any]:
        """Read every selected container once; the side-by-side sample (CPU None on a first reading)."""
        if self.t0 is None:
            self.t0 = time.time()
        sides = {"server": self._containers(self.servers)}
        if self.clients is not None:
            sides["client"] = self._containers(self.clients)
        everyone = [c for found in sides.values() for c in found]
        read: Callable[[Any], dict[str, Any] | None] = self._read
        results = pool.map(read, everyone) if pool is not None else map(read, everyone)
        readings = {c.id: r for c, r in zip(everyone, results, strict=True)}
        # Stamped when the readings are in: a rate covers the interval that ends at its reading.
        sample: dict[str, Any] = {"t": round(time.time() - self.t0, 3)}
        for side, found in sides.items():
            sample |= {f"{side}_{k}": v for k, v in self._side(found, readings).items()}
        return sample

    def _loop(self) -> None:
        # Reads run in parallel (the SDK's connection pool holds 10), so one round takes one
        # engine tick however many replicas there are; rounds start every interval_s.
        with ThreadPoolExecutor(self._parallel, thread_name_prefix="mcpswarm-docker-read") as pool:
            first = True
            due = time.monotonic()
            while True:
                sample = self.sample_once(pool)
                if not first:  # the first reading has no interval to be a rate over
                    self.samples.append(sample)
                first = False
                due = max(due + self.interval_s, time.monotonic())
                if self._stop.wait(due - time.monotonic()):
                    return


def service_sampler(
    client: Any, *, servers: str, clients: str | None = None, t0: float | None = None, interval_s: float = 1.0
) -> DockerStatsSampler:
    """A sampler of the tasks of two Swarm services (full names, ``<stack>_<service>``) on this node."""
    return DockerStatsSampler(
        client,
        servers={SERVICE_LABEL: servers},
        clients={SERVICE_LABEL: clients} if clients else None,
        interval_s=interval_s,
        t0=t0,
    )
