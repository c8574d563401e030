"""Measuring a response that passes through: chunks are stamped on arrival, parsed afterwards.

The proxy only appends ``(t_ns, bytes)`` while it forwards (nothing that could delay the caller's
next chunk); :meth:`ResponseTap.record` then runs the engine's own SSE parser, protocol parsers and
:class:`~runner.analysis.StreamAnalyzer` over the stamped chunks, so a mirrored stream is measured
exactly as a stream the engine sent itself. A non-streaming JSON answer arrives as one packet at
its last byte (its TTFT is its end-to-end time).
"""

from __future__ import annotations

from typing import Any

import orjson

from runner.analysis import StreamAnalyzer
from runner.metrics import estimate_tokens, fill_tokens
from runner.protocols import ProtocolError, make_parser
from runner.records import Outcome, PacketKind, RequestRecord
from runner.sse import SseParser, SseStreamError

_STOP = {"max_tokens": "length", "end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls"}


def protocol_for(path: str) -> str:
    """The wire format a request path speaks (the parsers tell chat and completions apart themselves)."""
    return "anthropic" if path.rstrip("/").endswith("/messages") else "openai-chat"


class ResponseTap:
    __slots__ = ("chunks", "content_type", "failure", "path", "sched_ns", "sent_ns", "status")

    def __init__(self, path: str, sched_ns: int, sent_ns: int) -> None:
        self.path = path
        self.sched_ns, self.sent_ns = sched_ns, sent_ns  # latency counts from the request's arrival
        self.status: int | None = None
        self.content_type = ""
        self.chunks: list[tuple[int, bytes]] = []
        self.failure: tuple[Outcome, str] | None = None

    # -- hot path: the proxy calls these while forwarding ---------------------------------------
    def head(self, status: int, content_type: str) -> None:
        self.status, self.content_type = status, content_type

    def feed(self, t_ns: int, chunk: bytes) -> None:
        self.chunks.append((t_ns, chunk))

    def fail(self, outcome: Outcome, error: str) -> None:
        if self.failure is None:
            self.failure = (outcome, error)

    # -- afterwards -----------------------------------------------------------------------------
    def record(self, request_id: str, end_ns: int) -> RequestRecord:
        a = StreamAnalyzer(self.sched_ns, self.sent_ns)
        a.http_status = self.status
        if self.chunks:
            a.first_byte_ns = self.chunks[0][0]
        try:
            self._analyze(a)
        except (ProtocolError, SseStreamError) as exc:
            a.fail(Outcome.PROTOCOL_ERROR, str(exc))
        if self.failure is not None:
            a.fail(*self.failure)
        rec = a.record(request_id, request_id, end_ns)
        fill_tokens(rec, client_input=None, client_output=estimate_tokens(rec.answer_text), estimated=True)
        rec.packets = []  # a mirror runs for days: keep the metrics, not every chunk's timeline row
        return rec

    def _analyze(self, a: StreamAnalyzer) -> None:
        if self.status is None:
            return
        if self.status >= 400:
            a.fail_http(self.status, b"".join(c for _, c in self.chunks)[:8192].decode("utf-8", "replace"))
        elif "event-stream" in self.content_type:
            self._stream(a)
        else:
            self._whole(a)

    def _stream(self, a: StreamAnalyzer) -> None:
        parser = make_parser(protocol_for(self.path), a, None)
        sse = SseParser()
        t = self.sent_ns
        for t, chunk in self.chunks:
            for ev in sse.feed(chunk):
                parser.event(ev.event, ev.data, t)
        for ev in sse.close():
            parser.event(ev.event, ev.data, t)
        parser.end(t)

    def _whole(self, a: StreamAnalyzer) -> None:
        if not self.chunks:
            a.fail(Outcome.EMPTY_ANSWER, "response had no body")
            return
        t = self.chunks[-1][0]
        try:
            obj = orjson.loads(b"".join(c for _, c in self.chunks))
        except orjson.JSONDecodeError:
            raise ProtocolError("response body is not JSON") from None
        if not isinstance(obj, dict):
            raise ProtocolError("response body is not a JSON object")
        thinking, answer, finish = _whole_texts(obj)
        if thinking:
            a.add(PacketKind.THINKING, t, thinking)
        if answer:
            a.add(PacketKind.ANSWER, t, answer)
        if isinstance(obj.get("usage"), dict):
            a.add_usage(t, obj["usage"], packet=False)
        if obj.get("error"):
            a.error_packet(t, str(obj["error"]))
        a.done = True
        a.finish(t, finish)


def _whole_texts(obj: dict[str, Any]) -> tuple[str, str, str | None]:
    """(thinking, answer, finish reason) of a non-streaming chat, completions or Messages response."""
    choices = obj.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        choice = choices[0]
        message = choice.get("message")
        if isinstance(message, dict):
            thinking = message.get("reasoning_content") or message.get("reasoning") or ""
            return str(thinking), str(message.get("content") or ""), choice.get("finish_reason")
        return "", str(choice.get("text") or ""), choice.get("finish_reason")
    blocks = obj.get("content")
    if isinstance(blocks, list):
        parts = [b for b in blocks if isinstance(b, dict)]
        thinking = "".join(str(b.get("thinking", "")) for b in parts if b.get("type") == "thinking")
        answer = "".join(str(b.get("text", "")) for b in parts if b.get("type") == "text")
        reason = obj.get("stop_reason")
        return thinking, answer, _STOP.get(str(reason), str(reason)) if reason else None
    return "", "", None
