"""Server-Sent Events parser, sans-I/O: bytes in, events out.

Follows the WHATWG "event stream interpretation" rules: lines end in CRLF, LF
or a lone CR; a line starting with ``:`` is a comment; ``field: value`` drops
one leading space; ``data`` lines join with LF; a blank line dispatches; an
event whose data buffer is empty is not dispatched; a leading UTF-8 BOM is
skipped.  Data stays ``bytes`` because the payload is JSON that the caller
hands straight to orjson: decoding to ``str`` here would be wasted work.
"""

from __future__ import annotations

from dataclasses import dataclass

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event.  ``event`` defaults to ``message``."""

    data: bytes
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEParser:
    """Incremental parser.  ``feed`` any slicing of the stream; events come out whole."""

    __slots__ = ("_at_start", "_cr_pending", "_data", "_event", "_last_id", "_partial", "_retry")

    def __init__(self) -> None:
        self._partial = b""  # an unterminated line carried to the next feed
        self._cr_pending = False  # the last byte fed was CR: an LF next belongs to it
        self._at_start = True  # nothing but (a prefix of) the BOM seen yet
        self._data: list[bytes] = []
        self._event = ""
        self._last_id: str | None = None  # persists across events, per the spec
        self._retry: int | None = None

    @property
    def last_event_id(self) -> str | None:
        return self._last_id

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume ``chunk`` and return the events it completed (often none or one)."""
        if self._at_start:
            buf = self._partial + chunk
            if len(buf) < 3 and _BOM.startswith(buf):
                self._partial = buf  # might still become a BOM: wait for more
                return []
            self._at_start = False
            self._partial = b""
            chunk = buf[3:] if buf.startswith(_BOM) else buf
        if not chunk:
            return []
        if self._cr_pending:
            self._cr_pending = False
            if chunk[0] == 0x0A:  # the LF of a CRLF split across feeds
                chunk = chunk[1:]
        if chunk.endswith(b"\r"):
            # A trailing CR ends a line now, but an LF in the next chunk must not end another.
            self._cr_pending = True
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        events: list[SSEEvent] = []
        for line in lines:
            if not line:
                self._dispatch(events)
            elif line[0] != 0x3A:  # ':' starts a comment
                self._field(line)
        return events

    def _field(self, line: bytes) -> None:
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\x00" not in value:
                self._last_id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():
            self._retry = int(value)
        # Any other field name is ignored, as the spec says.

    def _dispatch(self, out: list[SSEEvent]) -> None:
        data = self._data
        event = self._event
        self._data = []
        self._event = ""
        if not data:
            return
        payload = data[0] if len(data) == 1 else b"\n".join(data)
        out.append(SSEEvent(payload, event or "message", self._last_id, self._retry))
