"""One load connection: handshake, then the open-loop hot path.

Every request that reaches ``fire`` ends in exactly one outcome, recorded
once: ``ok`` and ``error`` when its reply (or a transport failure) arrives,
``timeout`` when its deadline passes, ``not_sent`` when it could not leave.
Latency is measured from the request's *intended* send time, so a stalled
server or a late generator shows up in the percentiles (wrk2's rule).

A reply that cannot be parsed is counted in ``errors_by_type`` as
``protocol:malformed`` but ends no request: its request still times out, or
fails when the connection dies, so it is never counted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import orjson

from pytest_mcpswarm.errors import MCPSwarmError, ProtocolError, TransportError
from pytest_mcpswarm.load.requests import RequestTemplate
from pytest_mcpswarm.protocol.lifecycle import ClientLifecycle, Ready
from pytest_mcpswarm.transport import open_transport
from pytest_mcpswarm.transport.base import ClientTransport, SendMeta

if TYPE_CHECKING:
    from pytest_mcpswarm.load.engine import Engine

#: Engine request ids start here so they never collide with the handshake's.
_FIRST_ID = 1_000


class LoadConnection:
    """Implements ``MessageSink``; owned and driven by the ``Engine``."""

    def __init__(self, engine: Engine, index: int) -> None:
        self.engine = engine
        self.index = index
        self.transport: ClientTransport | None = None
        self.lifecycle: ClientLifecycle | None = None
        self.templates: list[RequestTemplate] = []
        self.metas: list[SendMeta] = []
        self.ready = False
        self.wanted = False  # inside its scheduled span
        self.next_id = _FIRST_ID
        #: request id -> (intended time ns, index into the engine's method mix)
        self.inflight: dict[int, tuple[int, int]] = {}
        self.deadlines: deque[tuple[int, int]] = deque()
        self._handshake: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.mix_pos = index * 7  # desynchronise the method mix across connections

    # -- life cycle ----------------------------------------------------------------

    def start(self) -> None:
        self.wanted = True
        self._task = asyncio.get_running_loop().create_task(self._keep_connected())

    async def stop(self) -> None:
        """Stop after the requests in flight are answered or time out (none are sent any more)."""
        self.wanted = False
        while self.inflight and self.ready:
            self.expire(time.perf_counter_ns())
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._close_transport()

    async def _keep_connected(self) -> None:
        backoff = 0.05
        first = True
        while self.wanted:
            if not first:
                self.engine.reconnects += 1
            first = False
            try:
                await self._connect()
                backoff = 0.05
                await self._wait_closed()
            except (MCPSwarmError, TimeoutError) as exc:
                self.engine.connect_failed(self, exc)
            await self._close_transport()
            if not self.wanted:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    async def _connect(self) -> None:
        plan = self.engine.plan
        loop = asyncio.get_running_loop()
        self._closed = loop.create_future()
        transport = open_transport(
            plan.target,
            ws_newline=plan.ws_newline,
            headers=plan.headers or None,
        )
        self.transport = transport
        self._handshake = loop.create_future()
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
        self.templates = self.engine.templates_for(lifecycle)
        self.metas = [SendMeta(t.method, None, t.name) for t in self.templates]
        self.ready = True
        self.engine.connected(self)

    async def _wait_closed(self) -> None:
        await self._closed

    async def _close_transport(self) -> None:
        was_ready = self.ready
        self.ready = False
        self._fail_inflight("transport:closed")
        transport, self.transport = self.transport, None
        if was_ready:
            self.engine.disconnected(self)
        if transport is not None:
            with contextlib.suppress(TransportError, TimeoutError, OSError):
                await asyncio.wait_for(transport.close(), 5.0)

    def _flush_lifecycle(self) -> None:
        assert self.lifecycle is not None and self.transport is not None
        for out in self.lifecycle.data_to_send():
            self.transport.send(out.data, SendMeta(out.method, out.request_id, out.name))

    # -- hot path --------------------------------------------------------------------

    def fire(self, intended_ns: int, now_ns: int) -> None:
        """Send the request scheduled for ``intended_ns`` (already counted as scheduled)."""
        engine = self.engine
        spec = engine.mix[self.mix_pos % len(engine.mix)]
        self.mix_pos += 1
        if not self.ready:
            engine.not_sent(spec, intended_ns, "disconnected")
            return
        if now_ns - intended_ns > engine.max_lateness_ns:
            engine.not_sent(spec, intended_ns, "late")
            return
        request_id = self.next_id
        self.next_id = request_id + 1
        template = self.templates[spec]
        meta = self.metas[spec]
        try:
            assert self.transport is not None
            self.transport.send(
                template.render(request_id),
                meta if not engine.per_request_meta else SendMeta(meta.method, request_id, meta.name),
            )
        except TransportError:
            engine.not_sent(spec, intended_ns, "disconnected")
            return
        self.inflight[request_id] = (intended_ns, spec)
        self.deadlines.append((intended_ns + engine.timeout_ns, request_id))
        engine.sent(spec, now_ns - intended_ns)

    def expire(self, now_ns: int) -> None:
        deadlines = self.deadlines
        inflight = self.inflight
        while deadlines and deadlines[0][0] <= now_ns:
            _, request_id = deadlines.popleft()
            entry = inflight.pop(request_id, None)
            if entry is not None:
                self.engine.timeout(entry[1], now_ns)

    # -- MessageSink --------------------------------------------------------------------

    def on_message(self, data: bytes) -> None:
        if not self.ready:
            self._handshake_message(data)
            return
        now_ns = time.perf_counter_ns()
        try:
            message: Any = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.engine.protocol_event("malformed")
            return
        if isinstance(message, list):
            for item in message:
                self._on_reply(item, now_ns)
        else:
            self._on_reply(message, now_ns)

    def _on_reply(self, message: Any, now_ns: int) -> None:
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            self.engine.protocol_event("malformed")
            return
        request_id = message.get("id")
        if "method" in message:
            return  # a server request or notification: not ours to count
        if "result" in message:
            error = None
        elif isinstance(error := message.get("error"), dict) and isinstance(error.get("code"), int):
            pass
        else:
            self.engine.protocol_event("malformed")
            return
        entry = self.inflight.pop(request_id, None) if isinstance(request_id, int) else None
        if entry is None:
            if not (isinstance(request_id, int) and _FIRST_ID <= request_id < self.next_id):
                self.engine.protocol_event("unmatched_id")
            return  # else a late reply to a request already counted as a timeout
        intended_ns, spec = entry
        if error is None:
            self.engine.ok(spec, intended_ns, now_ns)
        else:
            self.engine.error(spec, f"jsonrpc:{error['code']}", now_ns)

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
        entry = self.inflight.pop(request_id, None) if isinstance(request_id, int) else None
        if entry is not None:
            self.engine.error(entry[1], f"transport:{error.kind}", time.perf_counter_ns())

    def on_session_expired(self) -> None:
        # The server forgot us: in-flight requests are lost; reconnect re-initializes.
        self._lost(TransportError("the server expired our session", kind="http_404"))

    def on_closed(self, error: TransportError | None) -> None:
        self._lost(error or TransportError("connection closed", kind="closed"))

    def _lost(self, error: TransportError) -> None:
        self.ready = False
        self._fail_inflight("transport:closed")
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(error)
        closed = getattr(self, "_closed", None)
        if closed is not None and not closed.done():
            closed.set_result(None)

    def _fail_inflight(self, key: str) -> None:
        if not self.inflight:
            return
        now_ns = time.perf_counter_ns()
        for _, spec in self.inflight.values():
            self.engine.error(spec, key, now_ns)
        self.inflight.clear()
        self.deadlines.clear()
