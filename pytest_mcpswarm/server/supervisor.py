"""``mcpswarm serve`` entry: one in-process worker, or N forked workers sharing the port via SO_REUSEPORT.

With N workers the parent never serves.  It resolves the port, forks the
children (each binds its own SO_REUSEPORT socket, so the kernel spreads
connections over N accept queues), prints the listening line once all are
ready, restarts a child that dies, and on SIGTERM/SIGINT stops them all.
Children ask the kernel for SIGTERM when the parent dies (PR_SET_PDEATHSIG),
so a SIGKILLed parent leaves no orphans behind.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
from typing import Final, NoReturn

from pytest_mcpswarm.errors import PortInUseError, ServerStartError
from pytest_mcpswarm.procs import die_with_parent
from pytest_mcpswarm.server.app import bind_socket, listening_line, run_worker
from pytest_mcpswarm.server.config import ServerConfig

READY_TIMEOUT_S: Final = 30.0
STOP_GRACE_S: Final = 5.0
MAX_RESTARTS_PER_MINUTE: Final = 10


def announce(config: ServerConfig, port: int) -> None:
    print(listening_line(config.host, port, config.workers), flush=True)


def serve(config: ServerConfig) -> int:
    """Blocking; returns the process exit code."""
    if config.workers <= 1:
        sock = bind_socket(config.host, config.port, reuse_port=False)
        run_worker(config, sock, 0, lambda port: announce(config, port))
        return 0
    return _Supervisor(config).run()


class _Stop(Exception):
    pass


class _Supervisor:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.children: dict[int, int] = {}  # pid -> worker index
        self.restarts: list[float] = []
        self.port = 0

    def run(self) -> int:
        # A plain bind (no SO_REUSEPORT) fails if *anything* holds the port, including another
        # reuse-port server we would otherwise silently join.  It also resolves --port 0.
        probe = bind_socket(self.config.host, self.config.port, reuse_port=False, listen=False)
        self.port = probe.getsockname()[1]
        probe.close()
        # Hold the port (bound, not listening: it takes no connections) so nobody else grabs it
        # while the children start; a SO_REUSEPORT socket of our own user lets them join.
        reserve = bind_socket(self.config.host, self.port, reuse_port=True, listen=False)
        ready_r, ready_w = os.pipe()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for worker in range(self.config.workers):
                self._spawn(worker, ready_w)
            self._await_ready(ready_r)
            announce(self.config, self.port)
            self._supervise(ready_w)
        except _Stop:
            pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._stop_children()
            reserve.close()
            os.close(ready_r)
            os.close(ready_w)
        return 0

    def _on_signal(self, signum: int, frame: object) -> NoReturn:
        raise _Stop

    def _spawn(self, worker: int, ready_w: int) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid:
            self.children[pid] = worker
            return
        code = 0
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            die_with_parent(signal.SIGTERM, parent=parent)
            sock = bind_socket(self.config.host, self.port, reuse_port=True)
            run_worker(self.config, sock, worker, lambda _port: _mark(ready_w, b"+"))
        except PortInUseError:
            os.write(ready_w, b"U")
            code = 3
        except BaseException as exc:  # the child must never return into the parent's code
            os.write(ready_w, b"E")
            print(f"mcpswarm serve: worker {worker} failed: {exc}", file=sys.stderr, flush=True)
            code = 1
        finally:
            os._exit(code)

    def _await_ready(self, ready_r: int) -> None:
        ready = 0
        deadline = time.monotonic() + READY_TIMEOUT_S
        while ready < self.config.workers:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([ready_r], [], [], left)[0]:
                raise ServerStartError(f"workers did not start within {READY_TIMEOUT_S:.0f}s")
            for mark in os.read(ready_r, 64):
                if mark == ord("U"):
                    raise PortInUseError(f"port {self.port} on {self.config.host} is already in use")
                if mark == ord("E"):
                    raise ServerStartError("a worker failed to start")
                ready += 1

    def _supervise(self, ready_w: int) -> None:
        while self.children:
            pid, status = os.wait()
            worker = self.children.pop(pid, None)
            if worker is None:
                continue
            now = time.monotonic()
            self.restarts = [t for t in self.restarts if now - t < 60] + [now]
            if len(self.restarts) > MAX_RESTARTS_PER_MINUTE:
                raise ServerStartError("workers keep dying; giving up")
            print(f"mcpswarm serve: worker {worker} (pid {pid}) exited with status {status}; restarting",
                  file=sys.stderr, flush=True)  # fmt: skip
            self._spawn(worker, ready_w)

    def _stop_children(self) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for pid in self.children:
                _kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_S
            while self.children and time.monotonic() < deadline:
                pid, _ = os.waitpid(-1, os.WNOHANG)
                if pid:
                    self.children.pop(pid, None)
                else:
                    time.sleep(0.02)
            for pid in self.children:
                _kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            self.children.clear()
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)


def _mark(fd: int, mark: bytes) -> None:
    os.write(fd, mark)


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
