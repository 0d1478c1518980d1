"""The two servers under test, as pinned process groups that always get cleaned up.

Each server runs in its own session (so one ``killpg`` reaches its workers)
and asks the kernel to kill it if the harness dies first (PR_SET_PDEATHSIG),
so neither a failed run nor a SIGKILLed harness leaves a server behind.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pytest_mcpswarm.errors import PortInUseError, ServerStartError, TransportError
from pytest_mcpswarm.selfbench.procs import die_with_parent, signal_group
from pytest_mcpswarm.selfbench.request import HTTP_PATH, ToolCall, check_reply, json_payload

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class PeerSpec:
    """How to start one server; ``argv`` gets the port appended as ``--port N`` by ``command``."""

    key: str
    label: str
    argv: tuple[str, ...]

    def command(self, port: int) -> list[str]:
        return [*self.argv, "--port", str(port)]


OURS = PeerSpec("ours", "mcpswarm", (sys.executable, "-m", "pytest_mcpswarm", "serve", "--workers", "1"))
SDK = PeerSpec("sdk", "mcp SDK", (sys.executable, "-m", "pytest_mcpswarm.selfbench.sdk_peer"))


@dataclass
class RunningPeer:
    spec: PeerSpec
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    command: list[str] = field(default_factory=list)

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.port}{HTTP_PATH}"

    def last_output(self) -> str:
        """The server's last line of output, to explain a failure in one line."""
        try:
            lines = [ln.strip() for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        return lines[-1][:300] if lines else ""

    def stop(self) -> None:
        """TERM the whole process group, KILL it if it lingers, and reap."""
        if self.proc.poll() is None:
            signal_group(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        # Workers may outlive a leader that exited on TERM: KILL the group regardless.
        signal_group(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait(timeout=5)
        self.log.unlink(missing_ok=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def ensure_port_free(port: int, *, option: str) -> None:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"port {port} ({option}) is already in use on {HOST}",
                    fix=f"stop the process holding it (`ss -ltnp 'sport = :{port}'`) or pass another {option}",  # noqa: E501
                ) from None
            raise ServerStartError(f"cannot bind {HOST}:{port} ({option}): {exc.strerror}") from None


def start(spec: PeerSpec, port: int, prefix: list[str], *, timeout: float = 30.0) -> RunningPeer:
    """Start ``spec`` on ``port`` and return once it accepts TCP connections."""
    fd, log_name = tempfile.mkstemp(prefix=f"mcpswarm-selfbench-{spec.key}-", suffix=".log")
    command = [*prefix, *spec.command(port)]
    try:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # The harness starts no threads, so a preexec_fn cannot deadlock on a lock held across fork.
            preexec_fn=die_with_parent,  # noqa: PLW1509
        )
    except OSError as exc:
        os.close(fd)
        Path(log_name).unlink(missing_ok=True)
        raise ServerStartError(
            f"cannot run {command[0]!r} to start the {spec.label} server: {exc.strerror}"
        ) from None
    os.close(fd)
    peer = RunningPeer(spec, port, proc, Path(log_name), command)
    try:
        _wait_listening(peer, timeout)
    except BaseException:
        peer.stop()
        raise
    return peer


def _wait_listening(peer: RunningPeer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        code = peer.proc.poll()
        if code is not None:
            said = peer.last_output()
            raise ServerStartError(
                f"the {peer.spec.label} server exited with status {code} before listening on port {peer.port}"
                + (f": {said}" if said else ""),
                fix=f"run `{shlex.join(peer.command)}` by hand to see its whole output",
            )
        try:
            with socket.create_connection((HOST, peer.port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"the {peer.spec.label} server did not listen on port {peer.port} within {timeout:.0f} s",
                fix=f"run `{shlex.join(peer.command)}` by hand to see why",
            )
        time.sleep(0.05)


def validate(peer: RunningPeer, call: ToolCall, *, timeout: float = 10.0) -> None:
    """Send ``call`` once and raise unless the reply is a real, successful echo result."""
    conn = http.client.HTTPConnection(HOST, peer.port, timeout=timeout)
    who = f"the {peer.spec.label} server ({peer.http_url})"
    try:
        conn.request("POST", HTTP_PATH, body=call.body(), headers=call.http_headers())
        resp = conn.getresponse()
        body = resp.read()
        content_type = resp.getheader("Content-Type") or ""
    except (OSError, http.client.HTTPException) as exc:
        raise TransportError(f"{who} did not answer the echo tools/call: {exc}") from None
    finally:
        conn.close()
    payload = json_payload(body, content_type, who=who) if resp.status == 200 else body
    check_reply(call, resp.status, payload, who=who)
