"""What a run measures: packets, and one record per request.

Every time is monotonic nanoseconds (``time.perf_counter_ns``) stamped when bytes arrived;
records keep times relative to the request's *intended* send time so they survive JSON.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class PacketKind(StrEnum):
    THINKING = "thinking"
    ANSWER = "answer"
    USAGE = "usage"
    HEARTBEAT = "heartbeat"
    ROLE = "role"  # role-only first chunk: not content, never TTFT
    TOOL_CALL = "tool_call"
    ERROR = "error"
    DONE = "done"


CONTENT_KINDS = frozenset({PacketKind.THINKING, PacketKind.ANSWER, PacketKind.TOOL_CALL})


@dataclass(slots=True)
class Packet:
    kind: PacketKind
    t_ns: int  # monotonic arrival time of the bytes that held this packet
    text: str = ""
    tokens: int = 0  # tokens this packet carries if the server says (e.g. one per chunk); 0 = unknown
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    error: str | None = None


class Outcome(StrEnum):
    SUCCESS = "success"
    HTTP_ERROR = "http_error"
    RATE_LIMITED = "rate_limited"  # HTTP 429 (or an in-stream error with code 429)
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    PROTOCOL_ERROR = "protocol_error"
    EMPTY_ANSWER = "empty_answer"
    TRUNCATED_THINKING = "truncated_thinking"
    CONTEXT_OVERFLOW = "context_overflow"
    LENGTH_STOPPED = "length_stopped"  # only when a plan counts max_tokens stops as failures
    CANCELLED = "cancelled"


FAILURE_CLASSES: tuple[str, ...] = tuple(o.value for o in Outcome if o is not Outcome.SUCCESS)


@dataclass(slots=True)
class RequestRecord:
    """One request, measured. Times in ms (floats, not rounded) relative to the scheduled send."""

    request_id: str
    prompt_id: str
    shard: int = 0
    user: int = -1  # virtual user index; -1 in open loop
    level: int | None = None  # sweep level index
    variant: int = 0  # A/B: index into RunSpec.variants
    # seconds since shard start that the record's times count from: open loop, when it should have
    # gone out; closed loop, when its bytes were written (HTTP; other transports: the call)
    scheduled_s: float = 0.0
    started_epoch: float = 0.0  # wall clock, label only
    schedule_lag_ms: float = 0.0  # actual send - scheduled send (open loop: coordinated omission)
    connect_ms: float | None = None  # connection setup when this request had to open one
    reconnected: bool = False  # its pooled connection was dead (closed by the server): sent again
    outcome: str = Outcome.SUCCESS.value
    error: str = ""
    http_status: int | None = None
    retry_after_s: float | None = None  # the server's Retry-After on a refusal
    timeout_kind: str | None = None
    stalled: bool = False  # heartbeats kept coming but no content: alive but stalled
    length_stopped: bool = False
    finish_reason: str | None = None
    first_byte_ms: float | None = None
    first_chunk_ms: float | None = None  # first data packet of any kind but heartbeat
    ttft_ms: float | None = None  # first thinking-or-answer packet
    ttft_answer_ms: float | None = None
    thinking_ms: float | None = None
    e2e_ms: float | None = None
    itl_ms: list[float] = field(default_factory=list)  # every gap between content packets
    tpot_ms: float | None = None
    tokens_per_s: float | None = None
    input_tokens: int | None = None  # server usage if present else client count
    output_tokens: int | None = None  # thinking + answer
    thinking_tokens: int | None = None
    usage_input_tokens: int | None = None
    usage_output_tokens: int | None = None
    client_input_tokens: int | None = None
    client_output_tokens: int | None = None
    cached_input_tokens: int | None = None  # the server's prefix-cache hit (usage), when it says
    tokens_estimated: bool = False  # counts came from a character estimate, not a tokenizer
    content_chunks: int = 0
    heartbeats: int = 0
    max_gap_ms: float | None = None
    answer_chars: int = 0
    thinking_chars: int = 0
    packets: list[Any] = field(default_factory=list)  # rows (kind, t_ms, tokens, chars[, text])
    answer_text: str = ""
    correct: bool | None = None  # graded against the prompt's expected answer, when it has one
    extracted_answer: str | None = None  # what the grader read as the final answer
    grade_reason: str = ""  # why the grader decided as it did

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.SUCCESS.value

    def to_dict(self) -> dict[str, Any]:
        """A shallow dict (the packet rows and ITL list are shared, not copied): a record is final
        when it is handed over, and a deep copy of every packet would cost the loop milliseconds."""
        return {name: getattr(self, name) for name in _FIELD_NAMES}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RequestRecord))
