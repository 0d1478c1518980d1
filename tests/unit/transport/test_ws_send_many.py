"""Coalesced WebSocket frames: one write, each frame masked with its own key (RFC 6455 §5.3)."""

from __future__ import annotations

import pytest

from pytest_mcpswarm.transport.ws import masked_text_frames


def parse_frames(buf: bytes) -> list[tuple[int, bool, bytes, bytes]]:
    """(opcode | FIN bits, masked, mask key, unmasked payload) of each client frame, by the RFC."""
    out = []
    pos = 0
    while pos < len(buf):
        first, second = buf[pos], buf[pos + 1]
        length, pos = second & 0x7F, pos + 2
        if length == 126:
            length, pos = int.from_bytes(buf[pos : pos + 2], "big"), pos + 2
        elif length == 127:
            length, pos = int.from_bytes(buf[pos : pos + 8], "big"), pos + 8
        key, pos = buf[pos : pos + 4], pos + 4
        masked = buf[pos : pos + length]
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(masked))
        out.append((first, bool(second & 0x80), key, payload))
        pos += length
    assert pos == len(buf)
    return out


@pytest.mark.parametrize("sizes", [[1], [0, 5], [125, 126, 65535, 65536], [40] * 50])
def test_every_frame_is_a_final_masked_text_frame_with_its_payload(sizes: list[int]) -> None:
    payloads = [bytes([65 + i % 26]) * n for i, n in enumerate(sizes)]
    frames = parse_frames(masked_text_frames(payloads))
    assert [(f[0], f[1], f[3]) for f in frames] == [(0x81, True, p) for p in payloads]


def test_each_frame_gets_a_fresh_mask_key() -> None:
    frames = parse_frames(masked_text_frames([b'{"jsonrpc":"2.0","method":"ping","id":1}'] * 64))
    keys = [f[2] for f in frames]
    assert len(set(keys)) > 60  # 64 random 32-bit keys: a repeat is a 1-in-10^6 event
    masked_bodies = {masked_text_frames([b"x" * 32]) for _ in range(20)}
    assert len(masked_bodies) > 1
