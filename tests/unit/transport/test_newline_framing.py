"""erlmcp's newline framing over WebSocket: lines reassembled across frames."""

from __future__ import annotations

from pytest_mcpswarm.transport.ws import LineSplitter

STREAM = b'{"id":1}\n{"id":2}\n\n{"id":3,"s":"a\\\\nb"}\n'
LINES = [b'{"id":1}', b'{"id":2}', b'{"id":3,"s":"a\\\\nb"}']


def test_every_two_frame_split() -> None:
    for cut in range(len(STREAM) + 1):
        splitter = LineSplitter()
        assert splitter.feed(STREAM[:cut]) + splitter.feed(STREAM[cut:]) == LINES
        assert splitter.pending == 0


def test_one_byte_frames() -> None:
    splitter = LineSplitter()
    lines: list[bytes] = []
    for i in range(len(STREAM)):
        lines += splitter.feed(STREAM[i : i + 1])
    assert lines == LINES


def test_partial_line_is_held_until_completed() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b'{"id":') == []
    assert splitter.pending == 6
    assert splitter.feed(b"9}") == []
    assert splitter.feed(b"\n{") == [b'{"id":9}']
    assert splitter.pending == 1
