"""Host readers: /proc of this very process, tc output parsing, Prometheus text."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from pytest_mcpswarm.capacity import procfs


def test_this_process_cpu_and_memory() -> None:
    before = procfs.process_cpu_s(os.getpid())
    # /proc counts CPU in clock ticks (10 ms): burn well over one tick of CPU time.
    start = time.process_time()
    while time.process_time() - start < 0.1:
        sum(i * i for i in range(10_000))
    after = procfs.process_cpu_s(os.getpid())
    assert before is not None and after is not None and after > before
    rss = procfs.process_rss_bytes(os.getpid())
    assert rss is not None and rss > 10 * 2**20
    assert procfs.process_cpu_s(2**22 + 12345) is None  # no such pid


def test_descendants_of_a_tree() -> None:
    parents = {2: 1, 3: 2, 4: 3, 5: 1, 6: 99}
    assert procfs.descendants(1, parents) == {2, 3, 4, 5}
    assert procfs.descendants(os.getppid()) >= {os.getpid()}


@pytest.mark.parametrize(
    ("text", "bits"),
    [
        ("qdisc tbf 8001: root refcnt 2 rate 1Mbit burst 4Kb lat 50.0ms", 1e6),
        ("qdisc tbf 1: root rate 512Kbit burst 4Kb", 512e3),
        ("qdisc tbf 1: root rate 10Gbit burst 4Kb", 10e9),
        ("qdisc tbf 1: root rate 125Kbps burst 4Kb", 1e6),
        ("qdisc noqueue 0: root refcnt 2", None),
    ],
)
def test_parse_tc_rate(text: str, bits: float | None) -> None:
    assert procfs.parse_tc_rate(text) == bits


def test_loopback_bytes() -> None:
    counts = procfs.interface_bytes("lo")
    assert counts is not None and all(c >= 0 for c in counts)
    assert procfs.interface_bytes("no-such-if0") is None


@pytest.fixture
def metrics_url() -> Iterator[str]:
    body = (
        b"# HELP process_cpu_seconds_total x\nprocess_cpu_seconds_total 12.5\n"
        b'mcpswarm_server_active_connections{transport="ws"} 3.0\n'
        b'mcpswarm_server_active_connections{transport="http"} 2.0\n'
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def test_scrape_sums_labelled_samples(metrics_url: str) -> None:
    got = procfs.scrape(metrics_url)
    assert got["process_cpu_seconds_total"] == 12.5
    assert got["mcpswarm_server_active_connections"] == 5.0
    assert procfs.scrape("http://127.0.0.1:9/metrics", timeout=0.5) == {}
