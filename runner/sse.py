"""Server-sent events from raw network chunks.

Decoding is httpx-sse's (its line splitter and WHATWG event decoder); we only add what a load
tester needs on top: strict UTF-8 (garbage bytes are a protocol error, not mojibake) and comment
lines surfaced as heartbeats instead of being dropped.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from httpx_sse._decoders import SSEDecoder


@dataclass(slots=True)
class SseEvent:
    event: str  # "" for the default "message" event; "comment" for a ``:`` line
    data: str


class SseStreamError(ValueError):
    """The bytes are not a valid event stream (e.g. not UTF-8)."""


DEFAULT_MAX_EVENT_BYTES = 1 << 20


class SseParser:
    """Feed bytes as they arrive; get complete events back.

    Hot path: an event that is one ``data:`` line (what every LLM server sends per token) or one
    comment is cut out directly; anything else (``event:``/``id:`` fields, multi-line data) goes
    through httpx-sse's decoder line by line, so the spec's rules still hold.

    Memory is bounded: an event still open after ``max_event_bytes`` is a protocol error (a body
    that never frames an event would otherwise be held whole). Chunks without a line break are
    only queued, never re-copied, so reaching the limit costs linear time.
    """

    __slots__ = ("_events", "_open_bytes", "_parts", "_tail", "_utf8", "max_event_bytes")

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self._events = SSEDecoder()
        self._tail = ""
        self._parts: list[str] = []  # text after the tail holding no line break yet
        self._open_bytes = 0  # bytes of the event still open (tail + parts)
        self.max_event_bytes = max_event_bytes

    @property
    def idle(self) -> bool:
        """Between events: no partial event or partial UTF-8 sequence held."""
        return not self._tail and not self._parts and not self._utf8.getstate()[0]

    def _too_big(self) -> SseStreamError:
        return SseStreamError(
            f"an SSE event grew past {self.max_event_bytes:,} bytes without ending "
            "(the endpoint's max_event_bytes limit)"
        )

    def feed(self, chunk: bytes) -> list[SseEvent]:
        try:
            text = self._utf8.decode(chunk)
        except UnicodeDecodeError as exc:
            raise SseStreamError(f"stream is not UTF-8 ({exc.reason} at byte {exc.start})") from None
        if not text:
            return []
        if "\n" not in text and "\r" not in text:  # no event can end here: queue it
            self._parts.append(text)
            self._open_bytes += len(chunk)
            if self._open_bytes > self.max_event_bytes:
                raise self._too_big()
            return []
        if self._parts:
            text = self._tail + "".join(self._parts) + text
            self._parts.clear()
        else:
            text = self._tail + text
        if "\r" in text:
            if text.endswith("\r"):  # maybe half of a CRLF: decide with the next chunk
                self._tail, text = "\r", text[:-1]
            else:
                self._tail = ""
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            text, _, rest = text.rpartition("\n\n")
            self._tail = rest + self._tail
        else:
            text, _, self._tail = text.rpartition("\n\n")
        self._open_bytes = len(self._tail.encode()) if self._tail else 0
        if self._open_bytes > self.max_event_bytes or len(text) > self.max_event_bytes:
            blocks = text.split("\n\n") if text else []
            if self._open_bytes > self.max_event_bytes or any(
                len(b.encode()) > self.max_event_bytes for b in blocks
            ):
                raise self._too_big()
        return self._blocks(text.split("\n\n")) if text else []

    def close(self) -> list[SseEvent]:
        """End of stream: a last event without its blank line still counts."""
        try:
            self._utf8.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise SseStreamError(f"stream ends inside a UTF-8 sequence ({exc.reason})") from None
        tail = self._tail + "".join(self._parts)
        self._parts.clear()
        tail, self._tail = tail.replace("\r\n", "\n").replace("\r", "\n").strip("\n"), ""
        return self._blocks(tail.split("\n\n")) if tail else []

    def _blocks(self, blocks: list[str]) -> list[SseEvent]:
        out: list[SseEvent] = []
        for block in blocks:
            if "\n" not in block:
                if block.startswith("data: "):
                    out.append(SseEvent("", block[6:]))
                    continue
                if block.startswith(":"):
                    out.append(SseEvent("comment", block[1:].strip()))
                    continue
            out.extend(self._slow(block))
        return out

    def _slow(self, block: str) -> list[SseEvent]:
        out: list[SseEvent] = []
        for line in [*block.split("\n"), ""]:
            if line.startswith(":"):
                out.append(SseEvent("comment", line[1:].strip()))
                continue
            sse = self._events.decode(line)
            if sse is not None:
                out.append(SseEvent(sse.event if sse.event != "message" else "", sse.data))
        return out
