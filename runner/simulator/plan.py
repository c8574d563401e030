"""What a request asks for (``Ask``) and what the simulator will send back (``Plan``).

Nothing here does I/O or reads clocks, so the token budget rules are easy to test on their own.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.simulator.answers import EFFORT
from runner.simulator.config import ERROR_FAULTS, FAULTS, SimConfig
from runner.simulator.tokens import messages_text, prompt_text

FAULT_AFTER_CHUNKS = 3  # reset / stream_error strike after this many content chunks


class BadRequest(ValueError):
    """The request body is not something a real server would accept (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class Ask:
    words: list[str]
    model: str
    max_tokens: int | None
    stream: bool
    include_usage: bool
    ignore_eos: bool = False  # vLLM extension: generate exactly max_tokens
    reasoning_effort: str = "medium"  # scales the thinking a request asks for (EFFORT)
    messages: list[dict[str, Any]] | None = None  # chat messages as sent (a tokenizer counts these)
    text: str = ""  # the prompt's text when there are no messages


@dataclass(frozen=True, slots=True)
class Plan:
    fault: str | None
    prompt_tokens: int
    cached_tokens: int
    thinking: int  # thinking tokens to send
    answer: int  # answer tokens to send
    finish: str  # "stop" | "length"; wire formats translate
    thinking_closed: bool  # thinking ended by itself (tags closed, block signed), not cut
    ttft_ns: int
    itl_ns: int
    chunk_tokens: int
    # speculative / MTP decoding: each step drafts chunk_tokens - 1 tokens, accepted one by one with
    # this probability until the first rejection; a chunk is one step (1 + accepted tokens)
    spec_accept_rate: float = 0.0
    spec_seed: int = 0

    def chunks(self) -> list[tuple[bool, int, int]]:
        """``(is_thinking, first_token, end_token)`` per chunk; a chunk never mixes thinking and answer."""
        out, i, total = [], 0, self.thinking + self.answer
        rng = random.Random(self.spec_seed) if self.spec_accept_rate > 0 else None
        while i < total:
            boundary = self.thinking if i < self.thinking else total
            end = min(i + (self._step(rng) if rng else self.chunk_tokens), boundary)
            out.append((i < self.thinking, i, end))
            i = end
        return out

    def _step(self, rng: random.Random) -> int:
        accepted = 0
        while accepted < self.chunk_tokens - 1 and rng.random() < self.spec_accept_rate:
            accepted += 1
        return 1 + accepted

    def due_steps(self, index: int, end: int) -> int:
        """Chunk ``index`` (ending at token ``end``) is due this many ITLs after the first: tokens
        leave one ITL apart, or with speculative decoding one step (chunk) per ITL."""
        return index if self.spec_accept_rate > 0 else end - 1


def _max_tokens(body: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BadRequest(f"{key} must be a positive integer, got {value!r}")
        return value
    return None


def _effort(body: Mapping[str, Any]) -> str:
    """OpenAI's ``reasoning_effort`` (or ``reasoning.effort``); ``medium`` when absent."""
    reasoning = body.get("reasoning")
    value = body.get("reasoning_effort") or (reasoning.get("effort") if isinstance(reasoning, dict) else None)
    if value is None:
        return "medium"
    if value not in EFFORT:
        raise BadRequest(f"reasoning_effort must be one of {', '.join(EFFORT)}, got {value!r}")
    return str(value)


def _object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def parse_chat(body: Any) -> Ask:
    body = _object(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list")
    options = body.get("stream_options") or {}
    return Ask(
        words=messages_text(messages).split(),
        model=str(body.get("model") or ""),
        max_tokens=_max_tokens(body, "max_completion_tokens", "max_tokens"),
        stream=body.get("stream") is True,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        ignore_eos=body.get("ignore_eos") is True,
        reasoning_effort=_effort(body),
        messages=[m for m in messages if isinstance(m, dict)],
    )


def parse_completions(body: Any) -> Ask:
    body = _object(body)
    if "prompt" not in body:
        raise BadRequest("prompt is required")
    options = body.get("stream_options") or {}
    text = prompt_text(body["prompt"])
    return Ask(
        words=text.split(),
        model=str(body.get("model") or ""),
        max_tokens=_max_tokens(body, "max_tokens"),
        stream=body.get("stream") is True,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        ignore_eos=body.get("ignore_eos") is True,
        reasoning_effort=_effort(body),
        text=text,
    )


def parse_messages(body: Any) -> Ask:
    body = _object(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: field required")
    return Ask(
        words=messages_text(messages, body.get("system")).split(),
        model=str(body.get("model") or ""),
        max_tokens=_max_tokens(body, "max_tokens"),
        stream=body.get("stream") is True,
        include_usage=True,  # Anthropic always reports usage
        messages=_with_system(messages, body.get("system")),
    )


def _with_system(messages: list[Any], system: Any) -> list[dict[str, Any]]:
    head = [{"role": "system", "content": system}] if system else []
    return head + [m for m in messages if isinstance(m, dict)]


def parse_ws(body: Any) -> Ask:
    body = _object(body)
    messages = body.get("messages")
    text = messages_text(messages) if isinstance(messages, list) else prompt_text(body.get("prompt"))
    return Ask(
        words=text.split(),
        model=str(body.get("model") or ""),
        max_tokens=_max_tokens(body, "max_tokens"),
        stream=True,
        include_usage=True,
        messages=[m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else None,
        text=text,
    )


def pick_fault(config: SimConfig, rng: random.Random, forced: str | None) -> str | None:
    """The header ``x-sim-fault`` wins; otherwise one seeded draw against the configured rates."""
    if forced:
        if forced not in FAULTS:
            raise BadRequest(f"unknown x-sim-fault {forced!r}; known: {', '.join(FAULTS)}")
        return forced
    draw = rng.random()
    if draw < config.error_rate:
        return rng.choice(ERROR_FAULTS)
    if draw < config.error_rate + config.empty_rate:
        return "empty"
    if draw < config.error_rate + config.empty_rate + config.truncate_rate:
        return "truncated"
    return None


def make_plan(
    config: SimConfig,
    ask: Ask,
    fault: str | None,
    cached_tokens: int,
    number: int = 0,
    *,
    prompt_tokens: int | None = None,
) -> Plan:
    """Thinking counts against ``max_tokens`` as on real servers: a cut inside thinking leaves no answer.
    ``prompt_tokens``: the prompt's count in the configured tokenizer; one per word without one."""
    want_thinking = round(config.thinking_tokens * EFFORT[ask.reasoning_effort])
    want_answer = config.output_tokens
    if fault == "empty":
        want_answer = 0
    elif fault == "truncated":  # a model that thinks until it runs out of budget, even if not a thinker
        want_thinking, want_answer = want_thinking or config.output_tokens, 0
    elif ask.ignore_eos and ask.max_tokens is not None:
        want_answer = max(0, ask.max_tokens - want_thinking)
    budget = ask.max_tokens if ask.max_tokens is not None else want_thinking + want_answer
    thinking = min(want_thinking, budget)
    answer = min(want_answer, budget - thinking)
    cut = thinking + answer < want_thinking + want_answer
    length = cut or fault == "truncated" or (ask.ignore_eos and ask.max_tokens is not None)
    prompt_tokens = len(ask.words) if prompt_tokens is None else prompt_tokens
    cached_tokens = min(cached_tokens, prompt_tokens)
    prefill_ns = round(config.prefill_us_per_token * 1_000 * max(0, prompt_tokens - cached_tokens))
    return Plan(
        fault=fault,
        prompt_tokens=prompt_tokens,
        cached_tokens=cached_tokens,
        thinking=thinking,
        answer=answer,
        finish="length" if length else "stop",
        thinking_closed=thinking == want_thinking and fault != "truncated",
        ttft_ns=round(config.ttft_ms * 1_000_000) + prefill_ns,
        itl_ns=round(config.itl_ms * 1_000_000),
        chunk_tokens=config.chunk_tokens,
        spec_accept_rate=config.spec_accept_rate,
        spec_seed=config.seed * 1_000_003 + number,
    )
