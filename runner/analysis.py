"""One request's packets in, one measured record out.

The analyzer only appends packets while the stream runs (the hot path); every metric is computed
once at the end by :func:`runner.metrics.timing_metrics` from the stamped timeline.
"""

from __future__ import annotations

import email.utils
import re
import time
from typing import Any

from runner.records import CONTENT_KINDS, Outcome, Packet, PacketKind, RequestRecord

_CONTEXT_RE = re.compile(
    r"context[ _-]?(length|window)|maximum context|too many tokens|prompt is too long|context_length_exceeded",
    re.IGNORECASE,
)
LENGTH_REASONS = frozenset({"length", "max_tokens", "model_length"})


def names_context_length(text: str) -> bool:
    return bool(_CONTEXT_RE.search(text))


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class StreamAnalyzer:
    __slots__ = (
        "connect_ns",
        "done",
        "error",
        "failure",
        "finish_reason",
        "first_byte_ns",
        "from_write",
        "http_status",
        "last_content_ns",
        "last_packet_ns",
        "origin_ns",
        "packets",
        "queued_ns",
        "reconnected",
        "retry_after_s",
        "reused",
        "sched_ns",
        "sent_ns",
        "stalled",
        "timeout_kind",
        "usage",
    )

    def __init__(self, sched_ns: int, sent_ns: int) -> None:
        self.sched_ns = sched_ns  # open loop: the scheduled time; closed loop: the call
        self.sent_ns = sent_ns
        # latency counts from here: the schedule, or with ``from_write`` (closed loop) the moment the
        # request's bytes were written (transport.connection_timing), not the client's time before
        self.origin_ns = sched_ns
        self.from_write = False
        self.packets: list[Packet] = []
        self.usage: dict[str, int] = {}
        self.finish_reason: str | None = None
        self.done = False
        self.first_byte_ns: int | None = None
        self.last_content_ns: int | None = None
        self.last_packet_ns = sent_ns
        self.http_status: int | None = None
        self.failure: str | None = None
        self.error = ""
        self.timeout_kind: str | None = None
        self.stalled = False
        self.connect_ns: int | None = None  # a new connection's setup time, if this request opened one
        # the longest wait of a socket read for this request's task: the client's queueing, kept
        # out of every stamp (transport.StampingHandler) and reported by the engine
        self.queued_ns = 0
        self.retry_after_s: float | None = None
        self.reused = False  # its connection came from the pool
        self.reconnected = False  # the pooled one was dead before any response byte: sent again

    # -- hot path -------------------------------------------------------------------------------
    def add(self, kind: PacketKind, t_ns: int, text: str = "", tokens: int = 0) -> None:
        self.packets.append(Packet(kind, t_ns, text, tokens))
        self.last_packet_ns = t_ns
        if kind in CONTENT_KINDS:
            self.last_content_ns = t_ns

    def add_usage(self, t_ns: int, usage: dict[str, Any], packet: bool = True) -> None:
        for key, value in usage.items():
            if isinstance(value, int) and not isinstance(value, bool):
                self.usage[key] = value
        details = usage.get("completion_tokens_details")
        if isinstance(details, dict) and isinstance(details.get("reasoning_tokens"), int):
            self.usage["reasoning_tokens"] = details["reasoning_tokens"]
        prompt_details = usage.get("prompt_tokens_details")  # OpenAI / vLLM prefix-cache hits
        if isinstance(prompt_details, dict) and isinstance(prompt_details.get("cached_tokens"), int):
            self.usage["cached_tokens"] = prompt_details["cached_tokens"]
        if packet:
            self.add(PacketKind.USAGE, t_ns)

    def finish(self, t_ns: int, reason: str | None) -> None:
        if reason:
            self.finish_reason = reason
        self.add(PacketKind.DONE, t_ns)

    # -- failures -------------------------------------------------------------------------------
    def fail(self, outcome: Outcome, error: str, **extra: Any) -> None:
        if self.failure is None:  # the first cause wins; later ones are consequences
            self.failure = outcome.value
            self.error = error[:500]
            for key, value in extra.items():
                if value is not None:
                    setattr(self, key, value)

    def fail_http(self, status: int, body: str, retry_after: str | None = None) -> None:
        if status == 429:
            self.retry_after_s = parse_retry_after(retry_after)
            self.fail(Outcome.RATE_LIMITED, f"HTTP 429: {body.strip()}", http_status=status)
        elif 400 <= status < 500 and names_context_length(body):
            self.fail(Outcome.CONTEXT_OVERFLOW, body.strip() or f"HTTP {status}", http_status=status)
        else:
            self.fail(Outcome.HTTP_ERROR, f"HTTP {status}: {body.strip()}", http_status=status)

    def error_packet(self, t_ns: int, message: str, status: int | None = None) -> None:
        self.add(PacketKind.ERROR, t_ns, message)
        if names_context_length(message):
            self.fail(Outcome.CONTEXT_OVERFLOW, message, http_status=status)
        elif status == 429:
            self.fail(Outcome.RATE_LIMITED, f"error in stream: {message}", http_status=status)
        else:
            self.fail(Outcome.HTTP_ERROR, f"error in stream: {message}", http_status=status)

    def timed_out(self, kind: str, now_ns: int) -> None:
        since = self.last_content_ns or self.first_byte_ns or self.sent_ns
        beats = sum(1 for p in self.packets if p.t_ns > since and p.kind is PacketKind.HEARTBEAT)
        if kind in ("idle", "first_byte") and beats:
            self.stalled = True
            msg = f"alive but stalled: {beats} heartbeats and no content for {(now_ns - since) / 1e9:.1f} s"
        else:
            msg = f"{kind} timeout after {(now_ns - self.sent_ns) / 1e9:.1f} s"
        self.fail(Outcome.TIMEOUT, msg, timeout_kind=kind)

    # -- the record -----------------------------------------------------------------------------
    def record(self, request_id: str, prompt_id: str, end_ns: int, keep_text: bool = False) -> RequestRecord:
        from runner.metrics import fill_timing

        rec = RequestRecord(request_id=request_id, prompt_id=prompt_id)
        rec.finish_reason = self.finish_reason
        rec.http_status = self.http_status
        rec.schedule_lag_ms = (self.sent_ns - self.sched_ns) / 1e6
        if self.connect_ns is not None:
            rec.connect_ms = self.connect_ns / 1e6
        rec.reconnected = self.reconnected
        rec.retry_after_s = self.retry_after_s
        if self.first_byte_ns is not None:
            rec.first_byte_ms = (self.first_byte_ns - self.origin_ns) / 1e6
        fill_timing(rec, self.packets, self.origin_ns, end_ns, keep_text)
        self._usage_into(rec)
        rec.outcome, rec.error = self._outcome(rec)
        rec.timeout_kind, rec.stalled = self.timeout_kind, self.stalled
        return rec

    def _usage_into(self, rec: RequestRecord) -> None:
        u = self.usage
        rec.usage_input_tokens = u.get("prompt_tokens", u.get("input_tokens"))
        if rec.usage_input_tokens is not None and "input_tokens" in u:  # Anthropic: cached parts apart
            cached = u.get("cache_read_input_tokens", 0) + u.get("cache_creation_input_tokens", 0)
            rec.usage_input_tokens += cached
        rec.usage_output_tokens = u.get("completion_tokens", u.get("output_tokens"))
        rec.cached_input_tokens = u.get("cached_tokens", u.get("cache_read_input_tokens"))
        if "reasoning_tokens" in u:
            rec.thinking_tokens = u["reasoning_tokens"]

    def _outcome(self, rec: RequestRecord) -> tuple[str, str]:
        if self.failure is not None:
            return self.failure, self.error
        if not self.done and self.finish_reason is None:
            return Outcome.PROTOCOL_ERROR.value, "stream closed before its end marker ([DONE] / message_stop)"
        length = self.finish_reason in LENGTH_REASONS
        if rec.answer_chars == 0 and not any(p.kind is PacketKind.TOOL_CALL for p in self.packets):
            if rec.thinking_chars or any(p.kind is PacketKind.THINKING for p in self.packets):
                why = "stopped by max_tokens inside thinking" if length else "thinking but no answer"
                return Outcome.TRUNCATED_THINKING.value, why
            return Outcome.EMPTY_ANSWER.value, "stream finished with no answer text"
        rec.length_stopped = length
        return Outcome.SUCCESS.value, ""
