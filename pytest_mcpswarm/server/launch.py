"""Start ``mcpswarm serve`` as a child process and wait for its listening line (for tests and launchers)."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import TracebackType

from pytest_mcpswarm.errors import ServerStartError
from pytest_mcpswarm.procs import preexec_die_with_parent

_LINE = re.compile(r"^mcpswarm serve: listening on (http://\S+) \(workers=(\d+)\)$")


class ServerProcess:
    """``with ServerProcess(["--fault", "drop:1%"]) as srv: srv.url ...``; stops the server on exit."""

    def __init__(self, args: Sequence[str] = (), *, env: dict[str, str] | None = None, timeout: float = 20.0):
        self.args = list(args)
        self.env = env
        self.timeout = timeout
        self.proc: subprocess.Popen[str] | None = None
        self.base = ""
        self.port = 0

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.base.removeprefix('http://')}/mcp/ws"

    def start(self) -> ServerProcess:
        cmd = [sys.executable, "-m", "pytest_mcpswarm", "serve", *self.args]
        if "--port" not in self.args:
            cmd += ["--port", "0"]
        env = {**os.environ, **(self.env or {})}
        # The server dies with whoever started it, even after a kill -9 (PR_SET_PDEATHSIG).
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            preexec_fn=preexec_die_with_parent(signal.SIGTERM),  # noqa: PLW1509
        )
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + self.timeout
        try:
            while time.monotonic() < deadline:
                if not sel.select(deadline - time.monotonic()):
                    break
                line = self.proc.stdout.readline()
                if not line:
                    err = self.proc.stderr.read() if self.proc.stderr else ""
                    self.proc.wait()
                    raise ServerStartError(f"mcpswarm serve exited early: {err.strip()}")
                m = _LINE.match(line.strip())
                if m:
                    self.base = m.group(1)
                    self.port = int(self.base.rsplit(":", 1)[1])
                    return self
        finally:
            sel.close()
        self.stop()
        raise ServerStartError(f"mcpswarm serve printed no listening line within {self.timeout}s")

    def stop(self) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        return proc.returncode

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
