"""RFC 6455 server framing fed raw bytes: no sockets."""

from __future__ import annotations

import os
import struct

import pytest

from pytest_mcpswarm.server import wsframes as wf


def masked(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    n = len(payload)
    head = bytes((opcode | (0x80 if fin else 0),))
    if n < 126:
        head += bytes((0x80 | n,))
    elif n < 65536:
        head += bytes((0x80 | 126,)) + struct.pack("!H", n)
    else:
        head += bytes((0x80 | 127,)) + struct.pack("!Q", n)
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def test_byte_by_byte_and_sizes() -> None:
    parser = wf.FrameParser(1 << 20)
    data = masked(wf.TEXT, b"a" * 5) + masked(wf.TEXT, b"b" * 300) + masked(wf.TEXT, b"c" * 70000)
    out = []
    for i in range(len(data)):
        out += parser.feed(data[i : i + 1])
    assert out == [(wf.TEXT, b"a" * 5), (wf.TEXT, b"b" * 300), (wf.TEXT, b"c" * 70000)]


def test_fragments_with_interleaved_ping() -> None:
    parser = wf.FrameParser(100)
    data = masked(wf.TEXT, b"he", fin=False) + masked(wf.PING, b"p") + masked(wf.CONT, b"llo")
    assert parser.feed(data) == [(wf.PING, b"p"), (wf.TEXT, b"hello")]


def test_too_big_is_refused_from_the_header_alone() -> None:
    parser = wf.FrameParser(100)
    with pytest.raises(wf.FrameError) as info:
        parser.feed(masked(wf.TEXT, b"x" * 200)[:4])  # header only, no payload yet
    assert info.value.code == wf.CLOSE_TOO_BIG
    parser = wf.FrameParser(100)
    parser.feed(masked(wf.TEXT, b"x" * 60, fin=False))
    with pytest.raises(wf.FrameError):
        parser.feed(masked(wf.CONT, b"x" * 60))


def test_server_frames_and_accept_key() -> None:
    assert wf.text_frame(b"hi") == b"\x81\x02hi"
    assert wf.text_frame(b"x" * 200)[:4] == b"\x81\x7e\x00\xc8"
    assert wf.close_frame(1009) == b"\x88\x02\x03\xf1"
    # RFC 6455 §1.3 worked example.
    assert wf.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
