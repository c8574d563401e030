"""``SimConfig``: every knob of the simulator. Each field is also a CLI flag (``ttft_ms`` →
``--ttft-ms``) and a key of ``POST /sim/config``; the field metadata carries the help text."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, get_type_hints

FAULTS: tuple[str, ...] = (
    "http_500",
    "http_429",
    "context_overflow",
    "cut_json",
    "no_done",
    "reset",
    "garbage",
    "stall",
    "slow_first_byte",
    "empty",
    "truncated",
    "stream_error",
)
# What --error-rate picks among (uniformly, seeded).
ERROR_FAULTS: tuple[str, ...] = ("http_500", "http_429", "stream_error")
THINK_FORMATS: tuple[str, ...] = ("field", "tags")
# Bound when the server starts; a runtime patch cannot move the socket.
FIXED_AT_START = frozenset({"host", "port"})


def _opt(default: Any, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, **extra})


@dataclass(frozen=True, slots=True)
class SimConfig:
    host: str = _opt("127.0.0.1", "interface to bind")
    port: int = _opt(8000, "TCP port; 0 picks a free one")
    model: str = _opt("llmperf-sim", "model id served by /v1/models (requests may name any model)")
    ttft_ms: float = _opt(200.0, "base time to first token, from when the request was read")
    prefill_us_per_token: float = _opt(0.0, "extra TTFT per uncached input token (microseconds)")
    itl_ms: float = _opt(20.0, "delay between output tokens")
    output_tokens: int = _opt(64, "answer length when max_tokens does not cut it")
    thinking_tokens: int = _opt(0, "thinking tokens before the answer (count against max_tokens)")
    think_format: str = _opt(
        "field", "thinking as reasoning_content (field) or <think> tags in content", choices=THINK_FORMATS
    )
    heartbeat_ms: float = _opt(0.0, "send a keep-alive after this long without a packet; 0 = off")
    error_rate: float = _opt(0.0, "share of requests failing with http_500, http_429 or stream_error")
    empty_rate: float = _opt(0.0, "share of streams finishing 'stop' with no answer tokens")
    truncate_rate: float = _opt(0.0, "share of streams cut by length inside thinking (no answer)")
    max_context: int = _opt(0, "input tokens above this get HTTP 400 like vLLM; 0 = unlimited")
    prefix_cache: bool = _opt(False, "a prompt's longest seen prefix (16-token blocks) costs no prefill")
    max_batch: int = _opt(0, "at most N streams generating at once, the rest wait FIFO; 0 = unlimited")
    misreport_usage: float = _opt(1.0, "factor applied to reported usage token counts")
    seed: int = _opt(0, "seed for output words and random faults")
    chunk_tokens: int = _opt(1, "tokens per streamed chunk")
    spec_accept_rate: float = _opt(
        0.0,
        "speculative/MTP decoding: each step drafts chunk_tokens-1 tokens, each accepted with this "
        "probability until the first rejection; one chunk of 1+accepted tokens per ITL; 0 = off",
    )
    force_include_usage: bool = _opt(False, "send OpenAI usage even without stream_options.include_usage")
    slow_first_byte_s: float = _opt(10.0, "how long the slow_first_byte fault waits before headers")
    keepalive_max_requests: int = _opt(
        0,
        "a keep-alive connection that served N requests is closed when the next one arrives on it, "
        "before any response byte (as cpp-httplib/llama.cpp does); 0 = never",
    )
    keepalive_idle_s: float = _opt(
        0.0,
        "a request arriving on a connection idle longer than this finds it closed, before any "
        "response byte; 0 = never",
    )
    answer_key: str = _opt(
        "", "answer questions found in the prompt from this key: builtin:math500 or a dataset file"
    )
    wrong_rate: float = _opt(0.0, "share of the key's items answered wrongly (exactly round(R*N), by seed)")
    leak_rate: float = _opt(0.0, "share of answers that open with reasoning text (a leak)")
    tokenizer: str = _opt(
        "",
        "count prompt tokens and cut scripted text in this tokenizer (qwen3, a tokenizer.json or folder), "
        "so reported usage equals a client's count with it; empty = one word per token",
    )
    body_seeded: bool = _opt(
        False,
        "output words follow the prompt and seed, ids and timestamps the body: not arrival order or clock",
    )

    def __post_init__(self) -> None:
        problems = [msg for ok, msg in self._checks() if not ok]
        if problems:
            raise ValueError("; ".join(problems))

    def _checks(self) -> list[tuple[bool, str]]:
        rates = (self.error_rate, self.empty_rate, self.truncate_rate)
        non_negative = (
            "ttft_ms",
            "prefill_us_per_token",
            "itl_ms",
            "output_tokens",
            "thinking_tokens",
            "heartbeat_ms",
            "max_context",
            "max_batch",
            "misreport_usage",
            "slow_first_byte_s",
            "keepalive_max_requests",
            "keepalive_idle_s",
        )
        checks = [(getattr(self, name) >= 0, f"{name} must be >= 0") for name in non_negative]
        return [
            *checks,
            (0 <= self.port <= 65535, "port must be 0..65535"),
            (self.think_format in THINK_FORMATS, f"think_format must be one of {THINK_FORMATS}"),
            (all(0 <= r <= 1 for r in rates) and sum(rates) <= 1, "rates must be in 0..1 and sum to <= 1"),
            (self.chunk_tokens >= 1, "chunk_tokens must be >= 1"),
            (
                0 <= self.wrong_rate <= 1 and 0 <= self.leak_rate <= 1,
                "wrong_rate and leak_rate must be in 0..1",
            ),
            (0 <= self.spec_accept_rate <= 1, "spec_accept_rate must be in 0..1"),
        ]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def patched(self, patch: Mapping[str, Any]) -> SimConfig:
        """A copy with ``patch`` applied; raises ``ValueError`` on unknown keys or wrong types."""
        hints = get_type_hints(SimConfig)
        changes: dict[str, Any] = {}
        for key, value in patch.items():
            if key not in hints:
                raise ValueError(f"unknown config key {key!r}")
            if key in FIXED_AT_START and value != getattr(self, key):
                raise ValueError(f"{key} is fixed when the server starts")
            changes[key] = _coerce(key, hints[key], value)
        return dataclasses.replace(self, **changes)


def _coerce(key: str, kind: Any, value: Any) -> Any:
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, str):
        return value
    raise ValueError(f"{key} must be {kind.__name__}, got {value!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per ``SimConfig`` field, defaulting to the field's default."""
    hints = get_type_hints(SimConfig)
    for f in dataclasses.fields(SimConfig):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} (default: {f.default})"
        kind = hints[f.name]
        if kind is bool:
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_text
            )
        else:
            parser.add_argument(
                flag, type=kind, default=f.default, help=help_text, choices=f.metadata.get("choices")
            )


def config_from_args(args: argparse.Namespace) -> SimConfig:
    return SimConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SimConfig)})


def config_to_argv(config: SimConfig) -> list[str]:
    """The flags that rebuild ``config`` in another process."""
    argv: list[str] = []
    for f in dataclasses.fields(SimConfig):
        flag = "--" + f.name.replace("_", "-")
        value = getattr(config, f.name)
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        else:
            argv.append(f"{flag}={value!r}" if isinstance(value, float) else f"{flag}={value}")
    return argv
