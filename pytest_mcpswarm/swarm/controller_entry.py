"""The test-controller container: the stack's results endpoint.

``POST /results/RUN/REPLICA`` stores a client replica's JSON document under
``$RESULTS_DIR/RUN/REPLICA.json``; ``GET /results/RUN`` lists the replicas that reported
and ``GET /results/RUN/REPLICA`` returns one.  ``/health`` answers ``ok``.  The swarm
backend's controller (pytest on the host, or this container) merges the documents.

The start of a run (``swarm/control.py``), kept in memory:

- ``POST /runs/RUN/ready/REPLICA``: a client replica is connected-ready and waits;
- ``POST /runs/RUN/start`` with ``{"start_at": UNIX_TIME}``: the controller's shared t=0;
- ``GET /runs/RUN``: ``{"ready": [...], "start_at": T or null}`` (replicas poll it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MAX_BODY = 64 * 1024 * 1024


class ResultsHandler(BaseHTTPRequestHandler):
    server_version = "mcpswarm-controller"
    root = Path("/results")
    #: run -> {"ready": set of replicas, "start_at": float | None}; guarded by ``lock``.
    runs: ClassVar[dict[str, dict[str, Any]]] = {}
    lock = threading.Lock()

    def _reply(self, status: HTTPStatus, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _parts(self) -> list[str] | None:
        parts = [p for p in self.path.split("?", 1)[0].split("/") if p]
        if not parts or parts[0] != "results" or not all(_NAME.match(p) for p in parts[1:]):
            return None
        return parts[1:]

    def _run_parts(self) -> list[str] | None:
        parts = [p for p in self.path.split("?", 1)[0].split("/") if p]
        if len(parts) < 2 or parts[0] != "runs" or not all(_NAME.match(p) for p in parts[1:]):
            return None
        return parts[1:]

    def _run_state(self, run: str) -> dict[str, Any]:
        return self.runs.setdefault(run, {"ready": set(), "start_at": None})

    def do_GET(self) -> None:
        if self.path == "/health":
            self._reply(HTTPStatus.OK, b"ok\n", "text/plain")
            return
        run_parts = self._run_parts()
        if run_parts is not None and len(run_parts) == 1:
            with self.lock:
                state = self.runs.get(run_parts[0], {"ready": set(), "start_at": None})
                body = {"run": run_parts[0], "ready": sorted(state["ready"]), "start_at": state["start_at"]}
            self._reply(HTTPStatus.OK, json.dumps(body).encode())
            return
        parts = self._parts()
        if parts is None or len(parts) not in (1, 2):
            self._reply(HTTPStatus.NOT_FOUND, b'{"error": "not found"}')
            return
        path = self.root.joinpath(*parts)
        if len(parts) == 1:
            names = sorted(p.stem for p in path.glob("*.json")) if path.is_dir() else []
            self._reply(HTTPStatus.OK, json.dumps({"run": parts[0], "replicas": names}).encode())
        elif (file := self.root / parts[0] / f"{parts[1]}.json").is_file():
            self._reply(HTTPStatus.OK, file.read_bytes())
        else:
            self._reply(HTTPStatus.NOT_FOUND, b'{"error": "no such result"}')

    def do_POST(self) -> None:
        run_parts = self._run_parts()
        if run_parts is not None:
            self._post_run(run_parts)
            return
        parts = self._parts()
        length = int(self.headers.get("Content-Length") or 0)
        if parts is None or len(parts) != 2:
            self._reply(HTTPStatus.NOT_FOUND, b'{"error": "POST /results/RUN/REPLICA"}')
            return
        if not 0 < length <= MAX_BODY:
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b'{"error": "body size"}')
            return
        body = self.rfile.read(length)
        try:
            json.loads(body)
        except ValueError:
            self._reply(HTTPStatus.BAD_REQUEST, b'{"error": "body is not JSON"}')
            return
        target = self.root / parts[0] / f"{parts[1]}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{parts[1]}.tmp"
        tmp.write_bytes(body)
        tmp.replace(target)
        self._reply(HTTPStatus.CREATED, b'{"stored": true}')

    def _post_run(self, parts: list[str]) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if 0 < length <= 4096 else b""
        if len(parts) == 3 and parts[1] == "ready":
            with self.lock:
                self._run_state(parts[0])["ready"].add(parts[2])
            self._reply(HTTPStatus.CREATED, b'{"ready": true}')
            return
        if len(parts) == 2 and parts[1] == "start":
            try:
                start_at = float(json.loads(body)["start_at"])
            except (ValueError, KeyError, TypeError):
                self._reply(HTTPStatus.BAD_REQUEST, b'{"error": "body must be {\\"start_at\\": UNIX_TIME}"}')
                return
            with self.lock:
                self._run_state(parts[0])["start_at"] = start_at
            self._reply(HTTPStatus.CREATED, b'{"started": true}')
            return
        self._reply(HTTPStatus.NOT_FOUND, b'{"error": "POST /runs/RUN/ready/REPLICA or /runs/RUN/start"}')

    def log_message(self, format: str, *args: object) -> None:  # quieter than the default
        if os.environ.get("MCPSWARM_DEBUG"):
            super().log_message(format, *args)


def main() -> int:
    ResultsHandler.root = Path(os.environ.get("RESULTS_DIR", "/results"))
    port = int(os.environ.get("CONTROLLER_PORT", "8090"))
    server = ThreadingHTTPServer(("0.0.0.0", port), ResultsHandler)
    print(f"test-controller: results endpoint on :{port}, storing in {ResultsHandler.root}", flush=True)
    signal.signal(signal.SIGTERM, _stop)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
