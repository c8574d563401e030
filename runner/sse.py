"""Server-sent events from raw network chunks.

Decoding is httpx-sse's (its line splitter and WHATWG event decoder); we only add what a load
tester needs on top: strict UTF-8 (garbage bytes are a protocol error, not mojibake) and comment
lines surfaced as heartbeats instead of being dropped.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from httpx_sse._decoders import SSEDecoder, SSELineDecoder


@dataclass(slots=True)
class SseEvent:
    event: str  # "" for the default "message" event; "comment" for a ``:`` line
    data: str


class SseStreamError(ValueError):
    """The bytes are not a valid event stream (e.g. not UTF-8)."""


class SseParser:
    """Feed bytes as they arrive; get complete events back."""

    __slots__ = ("_events", "_lines", "_utf8")

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self._lines = SSELineDecoder()
        self._events = SSEDecoder()

    def feed(self, chunk: bytes) -> list[SseEvent]:
        try:
            text = self._utf8.decode(chunk)
        except UnicodeDecodeError as exc:
            raise SseStreamError(f"stream is not UTF-8 ({exc.reason} at byte {exc.start})") from None
        return self._decode_lines(self._lines.decode(text)) if text else []

    def close(self) -> list[SseEvent]:
        """End of stream: whatever complete event is left (a final event without blank line)."""
        try:
            self._utf8.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise SseStreamError(f"stream ends inside a UTF-8 sequence ({exc.reason})") from None
        return self._decode_lines([*self._lines.flush(), ""])

    def _decode_lines(self, lines: list[str]) -> list[SseEvent]:
        out: list[SseEvent] = []
        for line in lines:
            if line.startswith(":"):
                out.append(SseEvent("comment", line[1:].strip()))
                continue
            sse = self._events.decode(line)
            if sse is not None:
                out.append(SseEvent(sse.event if sse.event != "message" else "", sse.data))
        return out
