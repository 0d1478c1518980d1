"""Driver: the minimal raw WebSocket loop our engine is measured against; prints one JSON line.

``python -m pytest_mcpswarm.selfbench.client_raw '{"url": ..., "method": "ping", ...}'``

Same library (picows), same connections, same offered rate, same tick and
the same coalesced, masked writes (``masked_text_frames``) as the engine, and
nothing else: no handshake, no schedule, no per-request bookkeeping, no
latency recording; a reply is counted by a substring check.  What the engine
costs beyond this loop is its overhead.

``"processes": N`` runs N copies at once with the connections shared out and
prints their sums: the raw loop split the way ``--workers N`` splits the engine.
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import time
from typing import Any

import orjson
import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from pytest_mcpswarm.load.requests import build_template
from pytest_mcpswarm.load.ticker import Ticker, grid_after
from pytest_mcpswarm.selfbench.procs import die_with_parent
from pytest_mcpswarm.selfbench.request import ToolCall
from pytest_mcpswarm.transport.ws import masked_text_frames


def request_format(method: str, payload_bytes: int) -> bytes:
    """``format % id`` gives the request: the selfbench tools/call, or a padded ping (as the engine's)."""
    if method == "tools/call":
        head, tail = ToolCall().ws_template()
        return head.replace(b"%", b"%%") + b"%d" + tail.replace(b"%", b"%%")
    template = build_template("ping", None, payload_bytes=payload_bytes)
    return template.prefix.replace(b"%", b"%%") + b"%d}"


#: Bound once: ``WSMsgType.TEXT`` looked up on the enum class costs 97 ns a frame here, this 10.
_TEXT = WSMsgType.TEXT
#: Counted with ``find``: ``bytes in bytes`` first tries the operand as an int and raises and
#: clears a TypeError inside CPython (3.11), 226 ns against 110 for this 293-byte reply.
_RESULT = b'"result"'


class _Tally:
    def __init__(self) -> None:
        self.ok = 0
        self.bad = 0
        self.closed = 0


class _Raw(WSListener):
    def __init__(self, tally: _Tally) -> None:
        self.tally = tally
        self.write: Any = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.write = transport.underlying_transport.write

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is _TEXT:
            if frame.get_payload_as_bytes().find(_RESULT) >= 0:
                self.tally.ok += 1
            else:
                self.tally.bad += 1

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.tally.closed += 1


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def drive(  # noqa: PLR0917 - one driver, called once, from main()
    url: str,
    connections: int,
    rate: float,
    tick: float,
    warmup: float,
    duration: float,
    fmt: bytes,
    origin_ns: int = 0,
) -> dict[str, Any]:
    tally = _Tally()
    clients: list[_Raw] = []
    transports: list[WSTransport] = []
    for _ in range(connections):
        # The engine's transport (uvloop's own, see transport.ws), not picows' aiofastnet default.
        transport, client = await ws_connect(lambda: _Raw(tally), url, use_aiofastnet=False)
        assert isinstance(client, _Raw)
        transports.append(transport)
        clients.append(client)
    sent = [0] * connections
    next_id = [1_000] * connections
    start = time.perf_counter()
    # The engine's tick: wake-ups on the grid origin + k * tick, whatever a tick costs.
    ticker, tick_ns = Ticker(), int(tick * 1e9)
    origin_ns = origin_ns or time.perf_counter_ns()
    mark: tuple[float, float, int] | None = None
    end = start + warmup + duration
    while True:
        now = time.perf_counter()
        if mark is None and now >= start + warmup:
            mark = (now, _cpu(), tally.ok)
        if now >= end:
            break
        due = int((now - start) * rate)
        for i, client in enumerate(clients):
            owed = due - sent[i]
            if owed > 0:
                first = next_id[i]
                client.write(masked_text_frames([fmt % n for n in range(first, first + owed)]))
                next_id[i] = first + owed
                sent[i] = due
        await ticker.until(grid_after(time.perf_counter_ns(), origin_ns, tick_ns))
    ticker.close()
    assert mark is not None
    t1, c1, n1 = time.perf_counter(), _cpu(), tally.ok
    await asyncio.sleep(0.2)  # let the last replies land before the sockets go
    for transport in transports:
        transport.disconnect(graceful=False)
    if tally.closed or tally.bad:
        return {"error": f"raw loop: {tally.closed} connections closed, {tally.bad} non-result replies"}
    return {"requests": n1 - mark[2], "seconds": t1 - mark[0], "cpu_s": c1 - mark[1], "sent": sum(sent)}


def split(a: dict[str, Any]) -> dict[str, Any]:
    """``processes`` copies of this loop at once, the connections shared out; their sums.

    The children inherit this process's CPU affinity (the client core).  This
    process only waits on their pipes, so it adds no wake-ups of its own.
    """
    n = int(a["processes"])
    # One tick grid for all, as the engine's workers share theirs (t=0 of the run).
    part = dict(a, processes=1, connections=a["connections"] // n, origin_ns=time.perf_counter_ns())
    argv = [sys.executable, "-m", "pytest_mcpswarm.selfbench.client_raw", orjson.dumps(part).decode()]
    children = [
        subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - no threads here
        )
        for _ in range(n)
    ]
    outs: list[dict[str, Any]] = []
    try:
        for child in children:
            said = child.communicate(timeout=a["warmup"] + a["duration"] + 60)[0].strip().splitlines()
            if not said:
                status = child.returncode
                return {"error": f"raw loop: a child process exited with status {status}, no result"}
            outs.append(orjson.loads(said[-1]))
    except subprocess.TimeoutExpired:
        return {"error": "raw loop: a child process did not finish in time"}
    finally:
        for child in children:
            child.kill()
            child.wait()
    for out in outs:
        if "error" in out:
            return out
    return {
        "requests": sum(o["requests"] for o in outs),
        "seconds": max(o["seconds"] for o in outs),
        "cpu_s": sum(o["cpu_s"] for o in outs),
        "sent": sum(o["sent"] for o in outs),
        "processes": n,
    }


def main() -> int:
    a = orjson.loads(sys.argv[1])
    if int(a.get("processes", 1)) > 1:
        out = split(a)
    else:
        fmt = request_format(a["method"], int(a.get("payload_bytes", 0)))
        try:
            out = uvloop.run(
                drive(
                    a["url"],
                    a["connections"],
                    a["rate"],
                    a["tick"],
                    a["warmup"],
                    a["duration"],
                    fmt,
                    int(a.get("origin_ns", 0)),
                )
            )
        except Exception as exc:  # picows raises its own types; one line for the harness
            out = {"error": f"raw loop: {type(exc).__name__}: {exc}"}
    sys.stdout.buffer.write(orjson.dumps(out) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
