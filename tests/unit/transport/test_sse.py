"""The SSE parser, fed raw bytes split at every possible boundary."""

from __future__ import annotations

import pytest

from pytest_mcpswarm.transport.sse import SSEEvent, SSEParser


def feed_split(stream: bytes, *cuts: int) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    start = 0
    for cut in (*cuts, len(stream)):
        events += parser.feed(stream[start:cut])
        start = cut
    return events


def every_split(stream: bytes) -> list[list[SSEEvent]]:
    """The events for every one- and two-cut slicing, plus one byte per feed."""
    results = [feed_split(stream, i) for i in range(len(stream) + 1)]
    results += [feed_split(stream, i, j) for i in range(len(stream)) for j in range(i, len(stream))]
    results.append(feed_split(stream, *range(1, len(stream))))
    return results


STREAM = (
    b"\xef\xbb\xbf: a comment\r\n"
    b"event: endpoint\r\ndata: /messages?session_id=1\r\n\r\n"
    b'id: 7\rretry: 1500\rdata: {"jsonrpc":"2.0",\rdata:"id":1}\r\r'
    b"data: tail\n\n"
)
EXPECTED = [
    SSEEvent(b"/messages?session_id=1", "endpoint", None, None),
    SSEEvent(b'{"jsonrpc":"2.0",\n"id":1}', "message", "7", 1500),
    SSEEvent(b"tail", "message", "7", 1500),
]


def test_mixed_line_endings_split_everywhere() -> None:
    for events in every_split(STREAM):
        assert events == EXPECTED


@pytest.mark.parametrize("ending", [b"\n", b"\r", b"\r\n"])
def test_each_line_ending_alone(ending: bytes) -> None:
    stream = b"event: message" + ending + b'data: {"id":1}' + ending + ending
    for events in every_split(stream):
        assert events == [SSEEvent(b'{"id":1}', "message")]


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n") == []  # the LF of the CRLF: not a blank line
    assert parser.feed(b"\r") == [SSEEvent(b"a")]


def test_event_with_no_data_is_not_dispatched_and_resets_the_name() -> None:
    assert feed_split(b"event: ping\n\nevent: x\ndata\n\n") == [SSEEvent(b"", "x")]
    assert feed_split(b"event: ping\n\ndata: y\n\n") == [SSEEvent(b"y", "message")]


def test_field_parsing_rules() -> None:
    events = feed_split(b"data:no-space\ndata:  two spaces\nfoo: ignored\nretry: 1x\nid: a\x00b\n\n")
    assert events == [SSEEvent(b"no-space\n two spaces", "message", None, None)]


def test_id_persists_and_bom_only_at_start() -> None:
    events = feed_split(b"id: 1\ndata: a\n\ndata: b\n\n\xef\xbb\xbfdata: c\n\n")
    # A BOM after the start is not stripped: it becomes part of a field name that is ignored.
    assert events == [SSEEvent(b"a", id="1"), SSEEvent(b"b", id="1")]


def test_short_stream_that_looks_like_a_bom_prefix() -> None:
    parser = SSEParser()
    assert parser.feed(b"\xef") == []
    assert parser.feed(b"data: x\n\n") == []  # \xefdata is an unknown field
    assert parser.feed(b"data: y\n\n") == [SSEEvent(b"y")]
    assert parser.last_event_id is None


def test_incomplete_event_is_held_not_dispatched() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: 1\n") == []
    assert parser.feed(b"data: 2\n") == []
    assert parser.feed(b"\n") == [SSEEvent(b"1\n2")]
