"""Headless Chromium: screenshot a report for the docs, dump its rendered DOM, tell a blank page.

Used by ``mcpswarm report --screenshot`` and by the tests that open the report
in a real browser.  Chromium runs with a throw-away profile, no network
services and no sandbox (we run as root in containers), and is killed if it
hangs.  A PNG is decoded with ``zlib`` alone, enough to judge whether a
screenshot shows anything.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pytest_mcpswarm.errors import BrowserError

CANDIDATES: Final = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_FLAGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def find_chromium() -> str | None:
    for name in CANDIDATES:
        if path := shutil.which(name):
            return path
    return None


def _run(page: Path, extra: list[str], *, width: int, height: int, timeout_s: float) -> bytes:
    binary = find_chromium()
    if binary is None:
        raise BrowserError("no Chromium found on PATH (looked for " + ", ".join(CANDIDATES) + ")")
    with tempfile.TemporaryDirectory(prefix="mcpswarm-chromium-") as profile:
        cmd = [binary, *_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", *extra]
        try:
            done = subprocess.run(
                [*cmd, page.resolve().as_uri()], capture_output=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            raise BrowserError(f"Chromium did not finish within {timeout_s:g} s") from None
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise BrowserError(f"Chromium exited with {done.returncode}: {' | '.join(tail)}")
    return done.stdout


def screenshot(
    page: Path, png: Path, *, width: int = 1280, height: int = 2000, timeout_s: float = 60.0
) -> Path:
    """Save a ``width`` x ``height`` screenshot of the HTML file ``page`` as ``png``."""
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    _run(page, [f"--screenshot={png.resolve()}"], width=width, height=height, timeout_s=timeout_s)
    if not png.exists() or png.stat().st_size == 0:
        raise BrowserError(f"Chromium wrote no screenshot to {png}")
    return png


def dump_dom(page: Path, *, width: int = 1280, height: int = 2000, timeout_s: float = 60.0) -> str:
    """The DOM of ``page`` after its scripts ran, serialized as HTML."""
    return _run(page, ["--dump-dom"], width=width, height=height, timeout_s=timeout_s).decode()


@dataclass(frozen=True, slots=True)
class PixelStats:
    width: int
    height: int
    #: Distinct grey levels (0..255) across the image.
    levels: int
    #: Fraction of pixels that are not the most common grey level (the background).
    ink: float


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> list[bytearray]:
    stride = width * bpp
    rows: list[bytearray] = []
    prev = bytearray(stride)
    pos = 0
    for _ in range(height):
        kind = raw[pos]
        line = bytearray(raw[pos + 1 : pos + 1 + stride])
        pos += 1 + stride
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = prev[i]
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
            elif kind == 4:
                ul = prev[i - bpp] if i >= bpp else 0
                p = left + up - ul
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - ul)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else ul)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(line)
        prev = line
    return rows


def pixel_stats(png: bytes, *, step: int = 4) -> PixelStats:
    """Grey-level spread of an 8-bit RGB(A) PNG, sampling every ``step``-th pixel of every row."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat = 8, b""
    width = height = bpp = 0
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or color not in (2, 6) or interlace:
                raise ValueError(
                    f"unsupported PNG: depth {depth}, colour type {color}, interlace {interlace}"
                )
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
    rows = _unfilter(zlib.decompress(idat), width, height, bpp)
    histogram = [0] * 256
    for line in rows:
        for i in range(0, width * bpp, bpp * step):
            histogram[(line[i] * 299 + line[i + 1] * 587 + line[i + 2] * 114) // 1000] += 1
    total = sum(histogram)
    return PixelStats(
        width=width,
        height=height,
        levels=sum(1 for n in histogram if n),
        ink=1 - max(histogram) / total if total else 0.0,
    )
