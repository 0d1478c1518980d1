"""``mcpswarm swarm monitor``: a live terminal dashboard of a deployed stack (the rig's monitor.sh).

What it shows, refreshed every 5 s by a sampler thread (the screen itself redraws 4x a second):

- services: replicas running/desired and health (``stack.status``);
- load, from Prometheus: client rps, p50/p95/p99 (``histogram_quantile`` over the clients'
  buckets summed by ``le``), errors per second, open connections; server rps;
- CPU, memory and network I/O per service, from the Docker stats API of this node's
  containers;
- active alerts (Prometheus ``/api/v1/alerts``);
- endpoints: the published ports.

Keys: ``q`` quits, ``l`` shows the logs of the next service (again: the one after), ``s``
toggles service details (every task, its state and error).  A source that fails shows its
error in its panel; the rest keeps updating.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from rich.console import Group, RenderableType
from rich.layout import Layout
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from pytest_mcpswarm.swarm import stack

#: Panel title -> PromQL.  Rates over 1 minute, as the Grafana dashboard.
_BUCKETS: Final = "sum by (le) (rate(mcp_client_request_duration_seconds_bucket[1m]))"
QUERIES: Final = {
    "client rps": "sum(rate(mcp_client_requests_total[1m]))",
    "p50 ms": f"1000 * histogram_quantile(0.5, {_BUCKETS})",
    "p95 ms": f"1000 * histogram_quantile(0.95, {_BUCKETS})",
    "p99 ms": f"1000 * histogram_quantile(0.99, {_BUCKETS})",
    "errors/s": 'sum(rate(mcp_client_requests_total{outcome!="ok"}[1m]))',
    "connections": "sum(mcp_client_connections_active)",
    "server rps": "sum(rate(mcpswarm_server_requests_total[1m]))",
}  # fmt: skip


@dataclass
class Sample:
    """One refresh of every source; a failed source leaves its error instead of its data."""

    at: float = 0.0
    services: list[stack.ServiceState] = field(default_factory=list)
    metrics: dict[str, float | None] = field(default_factory=dict)
    resources: dict[str, dict[str, float]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def _prom_get(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=4) as response:
        return json.loads(response.read())


def prometheus_figures(base: str) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name, query in QUERIES.items():
        result = _prom_get(base, "/api/v1/query", query=query)["data"]["result"]
        value = float(result[0]["value"][1]) if result else None
        out[name] = None if value is None or math.isnan(value) else value  # NaN: no traffic
    return out


def active_alerts(base: str) -> list[dict[str, Any]]:
    return list(_prom_get(base, "/api/v1/alerts")["data"]["alerts"])


def _container_stats(container: Any) -> tuple[str, dict[str, float]]:
    s = container.stats(stream=False)
    cpu, pre = s["cpu_stats"], s.get("precpu_stats") or {}
    delta = cpu["cpu_usage"]["total_usage"] - pre.get("cpu_usage", {}).get("total_usage", 0)
    system = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cpus = cpu.get("online_cpus") or 1
    nets = (s.get("networks") or {}).values()
    service = container.labels.get("com.docker.swarm.service.name", container.name)
    return service, {
        "cpu_pct": 100.0 * delta / system * cpus if system > 0 else 0.0,
        "mem_bytes": float(s.get("memory_stats", {}).get("usage", 0)),
        "rx_bytes": float(sum(n.get("rx_bytes", 0) for n in nets)),
        "tx_bytes": float(sum(n.get("tx_bytes", 0) for n in nets)),
    }


def resources(client: Any, name: str, pool: ThreadPoolExecutor) -> dict[str, dict[str, float]]:
    """CPU, memory and network bytes per service, summed over this node's containers."""
    containers = client.containers.list(filters={"label": f"com.docker.stack.namespace={name}"})
    out: dict[str, dict[str, float]] = {}
    for service, figures in pool.map(_container_stats, containers):
        total = out.setdefault(service.removeprefix(f"{name}_"), dict.fromkeys(figures, 0.0))
        for key, value in figures.items():
            total[key] += value
    return out


class Monitor:
    """The sampler (a thread) and the screen's state; ``render()`` is pure over the last sample."""

    def __init__(self, client: Any, name: str, prometheus: str, *, interval: float = 5.0) -> None:
        self.client = client
        self.name = name
        self.prometheus = prometheus.rstrip("/")
        self.interval = interval
        self.sample = Sample()
        self.view = "dashboard"  # or "details" or "logs"
        self.log_service = ""
        self.log_lines: list[str] = []
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(8)
        self._thread = threading.Thread(target=self._loop, name="monitor-sampler", daemon=True)

    # -- sampling ---------------------------------------------------------------------------

    def refresh(self) -> Sample:
        sample = Sample(at=time.time())
        sources: dict[str, Callable[[], None]] = {
            "services": lambda: setattr(sample, "services", stack.status(self.client, self.name)),
            "prometheus": lambda: setattr(sample, "metrics", prometheus_figures(self.prometheus)),
            "alerts": lambda: setattr(sample, "alerts", active_alerts(self.prometheus)),
            "resources": lambda: setattr(sample, "resources", resources(self.client, self.name, self._pool)),
        }
        for source, fetch in sources.items():
            try:
                fetch()
            except Exception as exc:  # any source may be down; show why, keep the others
                sample.errors[source] = f"{type(exc).__name__}: {exc}"[:200]
        self.sample = sample
        return sample

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- keys -------------------------------------------------------------------------------

    def key(self, ch: str) -> bool:
        """Handle one key; False means quit."""
        if ch in ("q", "Q"):
            return False
        if ch == "s":
            self.view = "dashboard" if self.view == "details" else "details"
        elif ch == "l":
            names = [s.name for s in self.sample.services if s.desired]
            if names:
                after = names.index(self.log_service) + 1 if self.log_service in names else 0
                self.log_service = names[after % len(names)]
                self.log_lines = self._logs(self.log_service)
                self.view = "logs"
        return True

    def _logs(self, short: str) -> list[str]:
        try:
            service = self.client.services.get(f"{self.name}_{short}")
            raw = b"".join(service.logs(stdout=True, stderr=True, tail=30, timestamps=False))
        except Exception as exc:
            return [f"logs unavailable: {exc}"]
        return raw.decode(errors="replace").splitlines()[-30:]

    # -- rendering ----------------------------------------------------------------------------

    def render(self) -> RenderableType:
        s = self.sample
        when = time.strftime("%H:%M:%S", time.localtime(s.at)) if s.at else "sampling..."
        header = Text(
            f"mcpswarm monitor — stack {self.name} — {when} — refresh {self.interval:g} s — "
            "q quit · l logs · s service details",
            style="bold",
        )
        if self.view == "logs":
            body: RenderableType = Panel(
                "\n".join(self.log_lines) or "(no output)", title=f"logs: {self.log_service} (l: next, s/q)"
            )
            return Group(header, body)
        if self.view == "details":
            return Group(header, self._details())
        layout = Layout()
        layout.split_column(
            Layout(header, size=1),
            Layout(name="top", ratio=3),
            Layout(name="bottom", ratio=2),
        )
        layout["top"].split_row(Layout(self._services()), Layout(self._performance()))
        layout["bottom"].split_row(Layout(self._resources(), ratio=3), Layout(self._alerts(), ratio=2),
                                   Layout(self._endpoints(), ratio=2))  # fmt: skip
        return layout

    def _error(self, source: str) -> str:
        return f"[red]{source}: {self.sample.errors[source]}[/]" if source in self.sample.errors else ""

    def _services(self) -> Panel:
        table = Table(expand=True)
        for col in ("service", "replicas", "health"):
            table.add_column(col)
        for st in self.sample.services:
            health = "ok" if st.converged else (", ".join(st.unhealthy) or st.last_error or "converging")
            style = "green" if st.converged else "yellow"
            table.add_row(st.name, f"{st.running}/{st.desired}", f"[{style}]{health}[/]")
        return Panel(Group(table, Text.from_markup(self._error("services"))), title="Services")

    def _performance(self) -> Panel:
        table = Table(expand=True)
        table.add_column("metric")
        table.add_column("value", justify="right")
        for name in QUERIES:
            value = self.sample.metrics.get(name)
            table.add_row(name, "—" if value is None else f"{value:,.2f}")
        return Panel(
            Group(table, Text.from_markup(self._error("prometheus"))), title="Performance (Prometheus)"
        )

    def _resources(self) -> Panel:
        table = Table(expand=True)
        for col in ("service", "CPU %", "memory MiB", "net rx MiB", "net tx MiB"):
            table.add_column(col, justify="left" if col == "service" else "right")
        for name, r in sorted(self.sample.resources.items()):
            table.add_row(name, f"{r['cpu_pct']:.1f}", f"{r['mem_bytes'] / 2**20:.0f}",
                          f"{r['rx_bytes'] / 2**20:.1f}", f"{r['tx_bytes'] / 2**20:.1f}")  # fmt: skip
        return Panel(
            Group(table, Text.from_markup(self._error("resources"))), title="Resources (Docker stats)"
        )

    def _alerts(self) -> Panel:
        lines = [
            f"[{'red' if a.get('state') == 'firing' else 'yellow'}]{a['labels'].get('alertname')}[/] "
            f"{a.get('state')}: {a.get('annotations', {}).get('summary', '')}"
            for a in self.sample.alerts
        ]
        text = "\n".join(lines) or "[green]no active alerts[/]"
        if "alerts" in self.sample.errors:
            text += "\n" + self._error("alerts")
        return Panel(Text.from_markup(text), title="Alerts")

    def _endpoints(self) -> Panel:
        lines = [f"{st.name}: {port}" for st in self.sample.services for port in st.ports]
        lines.append(f"prometheus API: {self.prometheus}")
        return Panel("\n".join(lines), title="Endpoints")

    def _details(self) -> Panel:
        table = Table(expand=True)
        for col in ("task", "state", "desired", "since", "error"):
            table.add_column(col)
        try:
            for svc in stack.services(self.client, self.name):
                for t in sorted(
                    svc.tasks(), key=lambda t: (t.get("Slot") or 0, t["Status"].get("Timestamp", ""))
                ):
                    status = t["Status"]
                    name = svc.name.removeprefix(f"{self.name}_") + (f".{t['Slot']}" if t.get("Slot") else "")
                    table.add_row(name, status["State"], t["DesiredState"], status.get("Timestamp", "")[:19],
                                  status.get("Err", ""))  # fmt: skip
        except Exception as exc:
            return Panel(f"[red]{exc}[/]", title="Service details")
        return Panel(table, title="Service details (s: back)")


@contextlib.contextmanager
def raw_keys() -> Iterator[Callable[[float], str]]:
    """Single keypresses from stdin without echo; yields ``read(timeout) -> key or ''``."""
    if not sys.stdin.isatty():

        def wait(timeout: float) -> str:
            time.sleep(timeout)
            return ""

        yield wait
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:

        def read(timeout: float) -> str:
            ready, _, _ = select.select([fd], [], [], timeout)
            return os.read(fd, 1).decode(errors="replace") if ready else ""

        yield read
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def run(client: Any, name: str, prometheus: str, *, interval: float = 5.0, once: bool = False) -> int:
    from rich.console import Console
    from rich.live import Live

    monitor = Monitor(client, name, prometheus, interval=interval)
    console = Console()
    if once:
        monitor.refresh()
        console.print(monitor.render())
        return 0
    monitor.start()
    try:
        with (
            raw_keys() as read,
            Live(monitor.render(), console=console, screen=True, auto_refresh=False) as live,
        ):
            while True:
                ch = read(0.25)
                if ch and not monitor.key(ch):
                    break
                live.update(monitor.render(), refresh=True)
    finally:
        monitor.stop()
    return 0
