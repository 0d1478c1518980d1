"""The test-controller container: the stack's results endpoint.

``POST /results/RUN/REPLICA`` stores a client replica's JSON document under
``$RESULTS_DIR/RUN/REPLICA.json``; ``GET /results/RUN`` lists the replicas that reported
and ``GET /results/RUN/REPLICA`` returns one.  ``/health`` answers ``ok``.  The swarm
backend's controller (pytest on the host, or this container) merges the documents.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MAX_BODY = 64 * 1024 * 1024


class ResultsHandler(BaseHTTPRequestHandler):
    server_version = "mcpswarm-controller"
    root = Path("/results")

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

    def do_GET(self) -> None:
        if self.path == "/health":
            self._reply(HTTPStatus.OK, b"ok\n", "text/plain")
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
