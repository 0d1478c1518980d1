"""RFC 6455 server-side framing, sans-I/O: bytes in, (opcode, payload) messages out.

Only what a server needs: client frames must be masked, server frames are
not.  Fragmented data messages are reassembled; control frames may arrive
between fragments (§5.4) and are handed out at once.  Oversized messages
are refused as soon as a frame header announces them, before their payload
is buffered.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Final

from websockets.speedups import apply_mask

CONT: Final = 0x0
TEXT: Final = 0x1
BINARY: Final = 0x2
CLOSE: Final = 0x8
PING: Final = 0x9
PONG: Final = 0xA

CLOSE_NORMAL: Final = 1000
CLOSE_PROTOCOL_ERROR: Final = 1002
CLOSE_UNSUPPORTED_DATA: Final = 1003
CLOSE_INVALID_PAYLOAD: Final = 1007
CLOSE_TOO_BIG: Final = 1009

_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_SMALL_TEXT_HEADERS: Final = [bytes((0x81, n)) for n in range(126)]


class FrameError(Exception):
    """The peer broke the framing rules; ``code`` is the close code to answer with."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        #: Messages completed in the same ``feed`` before the violation, so that what is handled
        #: before the close does not depend on how the bytes were split into reads.
        self.messages: list[tuple[int, bytes]] = []


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (§4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode("ascii")


def text_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return _SMALL_TEXT_HEADERS[n] + payload
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


def control_frame(opcode: int, payload: bytes = b"") -> bytes:
    return bytes((0x80 | opcode, len(payload))) + payload[:125]


def close_frame(code: int, reason: str = "") -> bytes:
    return control_frame(CLOSE, code.to_bytes(2, "big") + reason.encode()[:123])


class FrameParser:
    """Feed bytes, get complete messages; raises FrameError on a protocol violation."""

    __slots__ = ("_buf", "_frag_opcode", "_frag_parts", "_frag_size", "max_size")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buf = bytearray()  # an incomplete frame carried over; bytearray so appends stay O(1)
        self._frag_opcode = -1  # opcode of the message being reassembled, -1 when none
        self._frag_parts: list[bytes] = []
        self._frag_size = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        try:
            self._feed(data, out)
        except FrameError as exc:
            exc.messages = out
            raise
        return out

    def _feed(self, data: bytes, out: list[tuple[int, bytes]]) -> None:
        buf: bytes | bytearray
        if self._buf:
            self._buf += data
            buf = self._buf
        else:
            buf = data
        pos, n = 0, len(buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            if b0 & 0x70:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "reserved bits set without an extension")
            if not b1 & 0x80:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "client frames must be masked")
            opcode = b0 & 0x0F
            length = b1 & 0x7F
            hdr = pos + 2
            if length == 126:
                if n - hdr < 2:
                    break
                length = (buf[hdr] << 8) | buf[hdr + 1]
                hdr += 2
            elif length == 127:
                if n - hdr < 8:
                    break
                length = int.from_bytes(buf[hdr : hdr + 8], "big")
                hdr += 8
            if opcode >= 8:
                if length > 125 or not b0 & 0x80:
                    raise FrameError(
                        CLOSE_PROTOCOL_ERROR, "control frames must be final and at most 125 bytes"
                    )
            elif length + self._frag_size > self.max_size:
                raise FrameError(CLOSE_TOO_BIG, f"message exceeds {self.max_size} bytes")
            end = hdr + 4 + length
            if end > n:
                break
            payload = apply_mask(buf[hdr + 4 : end], bytes(buf[hdr : hdr + 4])) if length else b""
            pos = end
            if opcode in (TEXT, BINARY):
                if self._frag_opcode >= 0:
                    raise FrameError(CLOSE_PROTOCOL_ERROR, "new data frame inside a fragmented message")
                if b0 & 0x80:
                    out.append((opcode, payload))
                else:
                    self._frag_opcode, self._frag_parts, self._frag_size = opcode, [payload], length
            elif opcode == CONT:
                if self._frag_opcode < 0:
                    raise FrameError(CLOSE_PROTOCOL_ERROR, "continuation frame without a message to continue")
                self._frag_parts.append(payload)
                self._frag_size += length
                if b0 & 0x80:
                    out.append((self._frag_opcode, b"".join(self._frag_parts)))
                    self._frag_opcode, self._frag_parts, self._frag_size = -1, [], 0
            elif opcode in (CLOSE, PING, PONG):
                out.append((opcode, payload))
            else:
                raise FrameError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
        if pos >= n:
            self._buf = bytearray()
        elif buf is self._buf:
            del self._buf[:pos]
        else:
            self._buf = bytearray(buf[pos:])
