"""Client-side WebSocket frames (RFC 6455 §5.2), built by hand so a driver can batch them.

Pure: no sockets.  picows masks each frame it sends and writes it at once;
our WS driver instead builds every frame owed in one event-loop tick and
hands the kernel one buffer, which is what keeps the client off the critical
path.  Each frame still gets its own fresh random mask, as §5.3 requires of
a client.
"""

from __future__ import annotations

import random

_FIN_TEXT = 0x81
_MASK_BIT = 0x80
# A module-level RNG: ``getrandbits`` costs tens of ns, ``os.urandom`` a syscall per frame.
_rng = random.Random()


def mask_payload(payload: bytes, key: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``key`` repeated; the same call unmasks."""
    n = len(payload)
    if n == 0:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    # One big-int XOR runs in C; a Python loop over bytes would be ~100x slower.
    return (int.from_bytes(payload, "little") ^ int.from_bytes(stream, "little")).to_bytes(n, "little")


def text_frame(payload: bytes, key: bytes | None = None) -> bytes:
    """One final, masked text frame carrying ``payload``."""
    if key is None:
        key = _rng.getrandbits(32).to_bytes(4, "little")
    n = len(payload)
    if n < 126:
        header = bytes((_FIN_TEXT, _MASK_BIT | n))
    elif n < 1 << 16:
        header = bytes((_FIN_TEXT, _MASK_BIT | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((_FIN_TEXT, _MASK_BIT | 127)) + n.to_bytes(8, "big")
    return header + key + mask_payload(payload, key)


def parse_client_frame(frame: bytes) -> tuple[int, bool, bytes]:
    """(opcode, masked, unmasked payload) of one whole client frame; for tests and debugging."""
    opcode, second = frame[0] & 0x0F, frame[1]
    masked, length, pos = bool(second & _MASK_BIT), second & 0x7F, 2
    if length == 126:
        length, pos = int.from_bytes(frame[2:4], "big"), 4
    elif length == 127:
        length, pos = int.from_bytes(frame[2:10], "big"), 10
    if not masked:
        return opcode, False, frame[pos : pos + length]
    key = frame[pos : pos + 4]
    return opcode, True, mask_payload(frame[pos + 4 : pos + 4 + length], key)
