"""One load connection: handshake, then the hot paths of the three executors.

Every request that gets an id ends in exactly one outcome, recorded once:
``ok`` and ``error`` when its reply (or a transport failure) arrives,
``timeout`` when its deadline passes (a reply later than the timeout is a
timeout too, whenever the expiry pass runs), ``not_sent`` when it could not
leave.  Latency is measured from the request's *intended* send time, so a
stalled server or a late generator shows up in the percentiles (wrk2's rule).

A reply that cannot be parsed is counted in ``errors_by_type`` as
``protocol:malformed`` but ends no request: its request still times out, or
fails when the connection dies, so it is never counted twice.

Hot-path layout, all of it measured (see docs/PERFORMANCE_TUNING.md):

- ids are consecutive per connection and the method mix is a function of the
  id (``mix[id % len(mix)]``), so the in-flight table is a list indexed by
  ``id - base`` holding each request's intended time, 0 once it ended: a
  tick's sends are one ``list.extend`` (a dict cost 85 ns a request more,
  most of it rebuilding its table as ids come and go), and expiry walks ids
  in order, no deadline queue;
- a tick's due requests on one connection leave in one ``send_many`` write;
- counters are list slots and latencies raw nanoseconds appended to one
  ``array`` per method spec; the engine folds them into histograms once a
  second (``Engine.fold``);
- with one method spec and the open model, the transports call the C build
  of ``on_message``'s fast path (``_replies.c``) when it is there: a plain
  success in time is validated and recorded in C, anything else comes back
  to ``on_message``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from bisect import bisect_right
from itertools import compress, count
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import orjson

from pytest_mcpswarm.errors import MCPSwarmError, ProtocolError, TransportError
from pytest_mcpswarm.protocol.lifecycle import ClientLifecycle, Ready
from pytest_mcpswarm.transport import open_transport
from pytest_mcpswarm.transport.base import ClientTransport, SendMeta

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pytest_mcpswarm.load import _replies
    from pytest_mcpswarm.load.engine import Engine

#: Engine request ids start here so they never collide with the handshake's.
_FIRST_ID = 1_000
_loads = orjson.loads
_DecodeError = orjson.JSONDecodeError
_perf = time.perf_counter_ns
#: ``fire_due`` first looks for the due sends among the next this many.
_NEAR = 32


class _Success(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The common reply: JSON-RPC 2.0 success with an integer id and nothing else at the top.

    Decoded by msgspec, which validates ``result`` as JSON without building it
    (250 ns against orjson's 670 ns for the 260-byte selfbench reply).  Any
    other shape fails validation and takes the general path, so the rules stay
    orjson's.
    """

    jsonrpc: Literal["2.0"]
    id: int
    result: msgspec.Raw


_decode_success = msgspec.json.Decoder(_Success).decode
_NotSuccess = msgspec.DecodeError  # ValidationError is one too

#: The C build of ``on_message``'s fast path (``_replies.c``, built by setup.py when a C compiler is
#: there); None without it, with ``MCPSWARM_NO_EXTENSIONS=1``, or where ``perf_counter_ns`` is not
#: the CLOCK_MONOTONIC the C path reads (not Linux): then the Python path runs.
SuccessPath: type[_replies.SuccessPath] | None = None
if (
    not os.environ.get("MCPSWARM_NO_EXTENSIONS")
    and time.get_clock_info("perf_counter").implementation == "clock_gettime(CLOCK_MONOTONIC)"
):
    try:
        from pytest_mcpswarm.load import _replies
    except ImportError:  # pragma: no cover - a build without a C compiler
        pass
    else:
        SuccessPath = _replies.SuccessPath


class LoadConnection:
    """Implements ``MessageSink``; owned and driven by the ``Engine``."""

    def __init__(self, engine: Engine, index: int) -> None:
        self.engine = engine
        self.index = index
        self.transport: ClientTransport | None = None
        self.lifecycle: ClientLifecycle | None = None
        #: Per spec: ``bytes % request_id`` gives the wire bytes.
        self.formats: list[bytes] = []
        self.metas: list[SendMeta] = []
        self.ready = False
        self.wanted = False  # inside its scheduled span
        # Offsetting the first id desynchronises the method mix across connections.
        self.first_id = _FIRST_ID + index * 7
        self.next_id = self.first_id
        #: In flight: ``sent[id - base]`` is request ``id``'s intended send time (ns, perf_counter
        #: clock), 0 when it is not in flight; one slot per id up to ``next_id``.
        self.sent: list[int] = []
        self.base = self.first_id
        #: Open model: intended send times (ns) of the current chunk, ``times[pos:]`` still to send;
        #: and how far the shape was read.
        self.times: list[int] = []
        self.pos = 0
        self.read_to = 0.0
        self.calls = 0  # requests finished in this session (churn)
        self.span_start_ns = 0  # closed loop: the first request of a span is issued from here
        self._send_many: Callable[[Sequence[bytes]], None] | None = None
        #: ``fire_due``'s fast path: ``_send_many`` while ready with one method spec, else None.
        self._fast_send: Callable[[Sequence[bytes]], None] | None = None
        self._cancel: Callable[[int], bool | None] | None = None
        self._handshake: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._churned = False
        self._up = False  # counted as connected by the engine
        self._wake: asyncio.TimerHandle | None = None
        # Read once per reply: kept here, one attribute away instead of two.
        self._record = engine.latencies[0] if engine.single else None
        self._timeout_ns = engine.timeout_ns
        self._closed_loop = engine.closed_loop
        self._late_ns = engine.max_lateness_ns
        if SuccessPath is not None and self._record is not None and not self._closed_loop:
            # Shadows the method for the transports, which bind ``sink.on_message`` (as the WS
            # listener shadows its own ``on_ws_frame``); anything but a plain success in time
            # comes back to the method.
            vars(self)["on_message"] = SuccessPath(self, self._record, self.on_message, self._timeout_ns)

    # -- life cycle ----------------------------------------------------------------

    def start(self, span_start_ns: int) -> None:
        """Enter a span that starts at ``span_start_ns`` (the connection opens ahead of it)."""
        self.span_start_ns = span_start_ns
        self.wanted = True
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._keep_connected())

    async def stop(self) -> None:
        """Stop after the requests in flight are answered or time out (none are sent any more)."""
        self.wanted = False
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        while self.ready and any(self.sent):
            self.expire(time.perf_counter_ns())
            await asyncio.sleep(0.005)
        task, self._task = self._task, None
        while task is not None and not task.done():
            # Python 3.11's wait_for can swallow a cancel that races a finishing connect
            # (gh-86296): cancel until the task is really gone, and wake it if it waits.
            task.cancel()
            if self._closed is not None and not self._closed.done():
                self._closed.set_result(None)
            await asyncio.wait({task}, timeout=0.5)
        if task is not None and not task.cancelled():
            task.exception()  # retrieved: never "exception was never retrieved"
        await self._close_transport()

    async def _keep_connected(self) -> None:
        backoff = 0.05
        lost = False
        while self.wanted:
            if lost:
                self.engine.reconnects += 1
            try:
                await self._connect()
                backoff = 0.05
                assert self._closed is not None
                await self._closed
            except (MCPSwarmError, TimeoutError) as exc:
                self.engine.connect_failed(self, exc)
            except OSError as exc:
                # A socket error a transport did not translate is still a failed connection.
                self.engine.connect_failed(self, TransportError(str(exc), kind="reset"))
            await self._close_transport()
            if not self.wanted:
                return
            if self._churned:
                # Churn: a planned close after N calls; reopen at once, it is not a reconnect.
                self._churned = False
                lost = False
                continue
            lost = True
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    async def _connect(self) -> None:
        engine = self.engine
        plan = engine.plan
        loop = asyncio.get_running_loop()
        self._closed = loop.create_future()
        transport = open_transport(plan.target, ws_newline=plan.ws_newline, headers=plan.headers or None)
        self.transport = transport
        self._handshake = loop.create_future()
        # Its failure may land after _connect gave up waiting (cancelled, timed out): mark it seen.
        self._handshake.add_done_callback(_retrieve)
        await asyncio.wait_for(transport.connect(self), plan.timeout_s)
        lifecycle = ClientLifecycle(plan.protocol_version)
        self.lifecycle = lifecycle
        if lifecycle.stateless:
            # Stateless requests carry their revision from the first one on (server/discover included).
            transport.protocol_version = plan.protocol_version
        lifecycle.start()
        self._flush_lifecycle()
        await asyncio.wait_for(asyncio.shield(self._handshake), plan.timeout_s)
        transport.protocol_version = lifecycle.version
        templates = engine.templates_for(lifecycle)
        self.formats = [t.prefix.replace(b"%", b"%%") + b"%d}" for t in templates]
        self.metas = [SendMeta(t.method, None, t.name) for t in templates]
        # Transports whose failures are per request (HTTP) need the id with every send.
        self._send_many = None if engine.per_request_meta else getattr(transport, "send_many", None)
        #: Transports that must be told about a timed-out request (HTTP) offer ``cancel``.
        self._cancel = getattr(transport, "cancel", None)
        self.calls = 0
        self.ready = True
        self._fast_send = self._send_many if engine.single else None
        self._up = True
        engine.connected(self)
        if engine.closed_loop:
            now_ns = time.perf_counter_ns()
            if now_ns >= self.span_start_ns:
                self.issue(now_ns)
            else:  # connected ahead of the span
                delay = (self.span_start_ns - now_ns) / 1e9
                self._wake = asyncio.get_running_loop().call_later(delay, self.issue, self.span_start_ns)

    async def _close_transport(self) -> None:
        self.ready = False
        self._fast_send = None
        self._fail_inflight("transport:closed")
        transport, self.transport = self.transport, None
        if self._up:
            self._up = False
            self.engine.disconnected(self)
        if transport is not None:
            with contextlib.suppress(TransportError, TimeoutError, OSError):
                await asyncio.wait_for(transport.close(), 5.0)

    def _flush_lifecycle(self) -> None:
        assert self.lifecycle is not None and self.transport is not None
        for out in self.lifecycle.data_to_send():
            self.transport.send(out.data, SendMeta(out.method, out.request_id, out.name))
            self.engine.messages_sent += 1
            self.engine.bytes_sent += len(out.data)

    # -- open model: fire what is due ---------------------------------------------------

    def fire_due(self, now_ns: int) -> int:
        """Send every pending request whose intended time has come, in one write where possible.

        Returns the next intended send time of this connection's schedule chunk, -1 when the
        chunk is used up (the engine then pulls the next one).
        """
        times = self.times
        start = self.pos
        # A tick owes a few sends: search near ``start`` first.  A search over the whole chunk
        # reads far-apart slots (cache misses), 0.1 us a request in situ (perf, 2-core VM).
        near = start + _NEAR
        if near < len(times) and times[near] > now_ns:
            stop = bisect_right(times, now_ns, start, near)
        else:
            stop = bisect_right(times, now_ns, start)
        following = times[stop] if stop < len(times) else -1
        if stop == start:
            return following
        self.pos = stop
        first = self.next_id
        n = stop - start
        end = self.next_id = first + n
        fast = self._fast_send
        if fast is not None and times[start] >= now_ns - self._late_ns:
            # One method, nothing late (the oldest due one is in time): C-speed loops only,
            # ``lag_sent`` and ``_transmit`` inlined (this runs once per connection per tick).
            fmt = self.formats[0]
            payloads = [fmt % rid for rid in range(first, end)]
            try:
                fast(payloads)
            except TransportError:
                self._none_sent(first, end)
                return following
            due = times[start:stop]
            self.sent += due
            engine = self.engine
            engine._lag_at.append(now_ns)
            engine._lag_n.append(n)
            engine._lag_intended += due
            engine.scheduled[0] += n
            engine.messages_sent += n
            # One format and consecutive ids: all as long as the first unless the ids gain a digit.
            size = len(payloads[0])
            engine.bytes_sent += size * n if len(payloads[-1]) == size else sum(map(len, payloads))
            return following
        engine = self.engine
        if not self.ready:
            self._none_sent(first, end)
            return following
        mix, n_mix, scheduled = engine.mix, engine.mix_len, engine.scheduled
        late_ns = now_ns - engine.max_lateness_ns
        formats = self.formats
        slot = self.sent.append
        payloads = []
        sent = []
        for rid, intended in zip(range(first, end), times[start:stop], strict=True):
            spec = mix[rid % n_mix]
            scheduled[spec] += 1
            if intended < late_ns:
                engine.not_sent(spec, "late")
                slot(0)
            else:
                payloads.append(formats[spec] % rid)
                slot(intended)
                sent.append(intended)
        if payloads:
            engine.lag_sent(now_ns, sent)
            self._transmit(payloads, first, end)
        return following

    def _none_sent(self, first: int, end: int) -> None:
        """Requests ``[first, end)`` are scheduled but could not leave: the connection is down."""
        engine = self.engine
        mix, n_mix, scheduled = engine.mix, engine.mix_len, engine.scheduled
        self.sent += [0] * (end - first)
        for rid in range(first, end):
            spec = mix[rid % n_mix]
            scheduled[spec] += 1
            engine.not_sent(spec, "disconnected")

    def _transmit(self, payloads: list[bytes], first: int, end: int, nbytes: int = -1) -> None:
        """Write ``payloads``: the requests with ids in ``[first, end)`` that are in flight, in order.

        ``nbytes`` is their total length when the caller knows it (-1: count it).
        """
        engine = self.engine
        send_many = self._send_many
        if send_many is not None:
            try:
                send_many(payloads)
            except TransportError:
                self._unsend(first, end)  # nothing of this batch left
                return
        else:
            transport = self.transport
            assert transport is not None
            mix, n_mix, metas, sent, base = engine.mix, engine.mix_len, self.metas, self.sent, self.base
            at = 0
            for rid in range(first, end):
                if sent[rid - base]:
                    meta = metas[mix[rid % n_mix]]
                    try:
                        transport.send(payloads[at], SendMeta(meta.method, rid, meta.name))
                    except TransportError:
                        self._unsend(rid, end)  # this one and the rest never left
                        payloads = payloads[:at]
                        nbytes = -1
                        break
                    at += 1
        engine.messages_sent += len(payloads)
        engine.bytes_sent += nbytes if nbytes >= 0 else sum(map(len, payloads))

    def _unsend(self, first: int, end: int) -> None:
        # Their lag samples are the last ones recorded (same batch, same order): take them back.
        engine = self.engine
        sent, base = self.sent, self.base
        unsent = 0
        for rid in range(first, end):
            if sent[rid - base]:
                sent[rid - base] = 0
                unsent += 1
                engine.not_sent(engine.mix[rid % engine.mix_len], "disconnected")
        engine.lag_unrecord(unsent)

    # -- closed model and churn: one request in flight ----------------------------------

    def issue(self, intended_ns: int) -> None:
        """Closed loop: send the next request, scheduled (counted) now; latency from ``intended_ns``."""
        self._wake = None
        engine = self.engine
        if not self.ready or not self.wanted or intended_ns >= engine.end_ns:
            return
        now_ns = time.perf_counter_ns()
        if now_ns < intended_ns:
            # uvloop rounds timers to whole milliseconds, so a wake-up may come early: never send early.
            delay = (intended_ns - now_ns) / 1e9
            self._wake = asyncio.get_running_loop().call_later(delay, self.issue, intended_ns)
            return
        rid = self.next_id
        self.next_id = rid + 1
        spec = engine.mix[rid % engine.mix_len]
        engine.scheduled[spec] += 1
        self.sent.append(intended_ns)
        engine.lag_sent(now_ns, (intended_ns,))
        self._transmit([self.formats[spec] % rid], rid, rid + 1)

    def _finished(self, now_ns: int) -> None:
        """Closed loop: one request ended; schedule the next, or close the session (churn)."""
        engine = self.engine
        self.calls += 1
        if engine.churn_calls and self.calls >= engine.churn_calls:
            self._churned = True
            if self._closed is not None and not self._closed.done():
                self._closed.set_result(None)
            return
        think = engine.think_ns
        if think <= 0:
            self.issue(now_ns)
        else:
            loop = asyncio.get_running_loop()
            self._wake = loop.call_later(think / 1e9, self.issue, now_ns + think)

    # -- deadlines --------------------------------------------------------------------

    def expire(self, now_ns: int) -> None:
        """Time out, in id order, every request older than the timeout; drop the ended ids' slots."""
        sent = self.sent
        engine = self.engine
        limit = now_ns - engine.timeout_ns
        finished = 0
        # Intended times grow with the id, so the first one in time ends the walk.
        for k in compress(count(), sent):  # C-speed skip over the ended ones
            intended = sent[k]
            if intended > limit:
                break
            sent[k] = 0
            rid = self.base + k
            spec = engine.mix[rid % engine.mix_len]
            cancel = self._cancel
            if cancel is not None and cancel(rid) is True:
                engine.not_sent(spec, "late")  # still queued for a connection: it never left
            else:
                engine.timeout(spec)
            finished += 1
        else:
            k = len(sent)
        del sent[:k]
        self.base += k
        if finished and engine.closed_loop:
            self._finished(now_ns)

    def in_flight(self) -> dict[int, int]:
        """Request id -> intended send time (ns) of every request in flight (not a hot path)."""
        base = self.base
        return {base + k: t for k, t in enumerate(self.sent) if t}

    def in_flight_count(self) -> int:
        return len(self.sent) - self.sent.count(0)

    # -- MessageSink --------------------------------------------------------------------

    def on_message(self, data: bytes) -> None:
        now_ns = _perf()
        # msgspec skips the UTF-8 check inside ``result``: non-ASCII replies take orjson's path.
        if data.isascii():
            try:
                rid = _decode_success(data).id
            except _NotSuccess:
                pass
            else:
                # ``_take`` inlined: a call per reply is measurable here.  Not ready (the handshake,
                # or a lost connection): nothing is in flight, so this falls through to the checks below.
                k = rid - self.base
                sent = self.sent
                try:
                    intended = sent[k] if k >= 0 else 0
                except IndexError:  # cheaper than len() on every reply
                    intended = 0
                if intended:
                    sent[k] = 0
                    latency = now_ns - intended
                    record = self._record
                    if record is not None and latency <= self._timeout_ns:
                        record(latency)
                    else:
                        self._ended(rid, latency, None)
                    if self._closed_loop:
                        self._finished(now_ns)
                    return
        if not self.ready:
            self._handshake_message(data)
            return
        try:
            message: Any = _loads(data)
        except _DecodeError:
            self.engine.protocol_event("malformed")
            return
        if isinstance(message, list):
            for item in message:
                self._on_reply(item, now_ns)
        else:
            self._on_reply(message, now_ns)

    def _on_reply(self, message: Any, now_ns: int) -> None:
        engine = self.engine
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            engine.protocol_event("malformed")
            return
        if "method" in message:
            return  # a server request or notification: not ours to count
        request_id = message.get("id")
        if "result" in message and "error" not in message:
            error = None
        elif (
            "result" not in message
            and isinstance(error := message.get("error"), dict)
            and type(error.get("code")) is int
        ):
            pass
        else:
            engine.protocol_event("malformed")
            return
        if type(request_id) is not int:
            engine.protocol_event("unmatched_id")
            return
        intended = self._take(request_id)
        if not intended:
            if not self.first_id <= request_id < self.next_id:
                engine.protocol_event("unmatched_id")
            return  # else a late reply to a request already counted as a timeout
        self._ended(request_id, now_ns - intended, error)
        if self._closed_loop:
            self._finished(now_ns)

    def _ended(self, rid: int, latency_ns: int, error: dict[str, Any] | None) -> None:
        """Record the outcome of request ``rid``, answered ``latency_ns`` after its intended time."""
        engine = self.engine
        spec = engine.mix[rid % engine.mix_len]
        if latency_ns > engine.timeout_ns:
            engine.timeout(spec)  # answered, but later than the timeout allows
        elif error is None:
            engine.latencies[spec](latency_ns)
        else:
            engine.error(spec, f"jsonrpc:{error['code']}")

    def _handshake_message(self, data: bytes) -> None:
        lifecycle, handshake = self.lifecycle, self._handshake
        if lifecycle is None or handshake is None or handshake.done():
            return
        try:
            lifecycle.receive_data(data)
        except ProtocolError as exc:
            handshake.set_exception(exc)
            return
        self._flush_lifecycle()
        for event in lifecycle.events_received():
            if isinstance(event, Ready):
                handshake.set_result(None)
        if lifecycle.state.value == "failed" and not handshake.done():
            handshake.set_exception(ProtocolError("the server rejected the handshake", kind="version"))

    def on_request_failed(self, request_id: int | str, error: TransportError) -> None:
        if not self.ready:
            if self._handshake is not None and not self._handshake.done():
                self._handshake.set_exception(error)
            return
        intended = self._take(request_id) if type(request_id) is int else 0
        if intended:
            assert isinstance(request_id, int)
            engine = self.engine
            engine.error(engine.mix[request_id % engine.mix_len], f"transport:{error.kind}")
            if engine.closed_loop:
                self._finished(time.perf_counter_ns())

    def on_session_expired(self) -> None:
        # The server forgot us: in-flight requests are lost; reconnect re-initializes.
        self._lost(TransportError("the server expired our session", kind="http_404"))

    def on_closed(self, error: TransportError | None) -> None:
        self._lost(error or TransportError("connection closed", kind="closed"))

    def _lost(self, error: TransportError) -> None:
        self.ready = False
        self._fast_send = None
        self._fail_inflight("transport:closed")
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(error)
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    def _fail_inflight(self, key: str) -> None:
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        engine = self.engine
        for rid in self.in_flight():
            engine.error(engine.mix[rid % engine.mix_len], key)
        self.sent.clear()
        self.base = self.next_id

    def _take(self, request_id: int) -> int:
        """End request ``request_id``: its intended time, or 0 if it was not in flight."""
        k = request_id - self.base
        sent = self.sent
        if 0 <= k < len(sent) and (intended := sent[k]):
            sent[k] = 0
            return intended
        return 0


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
