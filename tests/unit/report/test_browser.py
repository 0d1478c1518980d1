"""The PNG reader that tells a blank screenshot from a page, on PNGs with every row filter."""

from __future__ import annotations

import struct
import zlib

import pytest

from pytest_mcpswarm.report.browser import pixel_stats


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _png(pixels: list[list[tuple[int, int, int]]], filters: list[int]) -> bytes:
    """RGB PNG whose row ``y`` is encoded with filter ``filters[y % len(filters)]``."""
    width, bpp = len(pixels[0]), 3
    raw = b""
    prev = bytes(width * bpp)
    for y, row in enumerate(pixels):
        line = bytes(v for px in row for v in px)
        kind = filters[y % len(filters)]
        out = bytearray()
        for i, v in enumerate(line):
            left = line[i - bpp] if i >= bpp else 0
            up = prev[i]
            ul = prev[i - bpp] if i >= bpp else 0
            pred = [0, left, up, (left + up) >> 1, _paeth(left, up, ul)][kind]
            out.append((v - pred) & 0xFF)
        raw += bytes([kind]) + out
        prev = line
    ihdr = struct.pack(">IIBBBBB", width, len(pixels), 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("filters", [[0], [1], [2], [3], [4], [0, 1, 2, 3, 4]])
def test_half_black_half_white_under_every_filter(filters: list[int]) -> None:
    row = [(0, 0, 0)] * 8 + [(255, 255, 255)] * 8
    stats = pixel_stats(_png([row] * 6, filters), step=1)
    assert (stats.width, stats.height, stats.levels) == (16, 6, 2)
    assert stats.ink == pytest.approx(0.5)


def test_a_blank_image_has_no_ink() -> None:
    stats = pixel_stats(_png([[(255, 255, 255)] * 8] * 4, [4]), step=1)
    assert (stats.levels, stats.ink) == (1, 0.0)


def test_a_gradient_has_many_levels() -> None:
    rows = [[(x * 16, x * 16, x * 16) for x in range(16)] for _ in range(3)]
    assert pixel_stats(_png(rows, [1, 4]), step=1).levels == 16


def test_not_a_png() -> None:
    with pytest.raises(ValueError, match="not a PNG"):
        pixel_stats(b"GIF89a")
