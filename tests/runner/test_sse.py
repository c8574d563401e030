from __future__ import annotations

import pytest

from runner.sse import SseEvent, SseParser, SseStreamError

STREAM = (
    b'data: {"a":1}\n\n'
    b": ping\n\n"
    b"event: ping\ndata: {}\n\n"
    b"data: line1\ndata: line2\n\n"
    b"id: 7\nretry: 10\ndata: x\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    SseEvent("", '{"a":1}'),
    SseEvent("comment", "ping"),
    SseEvent("ping", "{}"),
    SseEvent("", "line1\nline2"),
    SseEvent("", "x"),
    SseEvent("", "[DONE]"),
]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, 10_000])
def test_events_are_the_same_however_the_bytes_are_cut(size: int) -> None:
    p = SseParser()
    events = []
    for i in range(0, len(STREAM), size):
        events += p.feed(STREAM[i : i + size])
    events += p.close()
    assert events == EXPECTED


@pytest.mark.parametrize("size", [1, 3, 1000])
def test_crlf_and_cr_line_endings(size: int) -> None:
    data = STREAM.replace(b"\n", b"\r\n")
    p = SseParser()
    events = [e for i in range(0, len(data), size) for e in p.feed(data[i : i + size])] + p.close()
    assert events == EXPECTED
    p = SseParser()
    assert p.feed(STREAM.replace(b"\n", b"\r")) + p.close() == EXPECTED


def test_final_event_without_blank_line_and_split_utf8() -> None:
    p = SseParser()
    word = "héllo 世界".encode()
    assert p.feed(b"data: " + word[:2]) == []
    assert p.feed(word[2:]) == []
    assert p.close() == [SseEvent("", "héllo 世界")]


def test_garbage_bytes_raise_a_clear_error() -> None:
    with pytest.raises(SseStreamError, match="not UTF-8"):
        SseParser().feed(b"data: \xff\xfe\n\n")


def test_an_event_that_never_ends_is_refused_past_the_limit() -> None:
    p = SseParser(max_event_bytes=1000)
    p.feed(b"data: ")
    with pytest.raises(SseStreamError, match="1,000 bytes"):
        for _ in range(20):
            p.feed(b"x" * 100)


def test_one_complete_event_over_the_limit_is_refused() -> None:
    p = SseParser(max_event_bytes=1000)
    with pytest.raises(SseStreamError, match="max_event_bytes"):
        p.feed(b"data: " + b"x" * 2000 + b"\n\n")


def test_events_under_the_limit_pass_even_when_split_into_many_chunks() -> None:
    p = SseParser(max_event_bytes=1000)
    events = []
    for piece in [b"data: ", b"a" * 300, b"b" * 300, b"\n", b"\ndata: x\n\n"]:
        events += p.feed(piece)
    assert [e.data for e in events] == ["a" * 300 + "b" * 300, "x"]


def test_a_body_without_blank_lines_is_cut_in_linear_time() -> None:
    # 4 MiB in 512-byte chunks: each chunk is queued, never re-copied with everything before it
    p = SseParser()
    chunk = b"y" * 512
    fed = 0
    with pytest.raises(SseStreamError):
        while fed < 4 << 20:
            p.feed(chunk)
            fed += len(chunk)
    assert (1 << 20) <= fed <= (1 << 20) + 512
