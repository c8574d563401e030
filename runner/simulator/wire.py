"""Wire formats: how each API spells the same stream of packets.

A ``Wire`` is made per request (Anthropic's needs to know which content block is open) and turns
packets into *frames*: SSE events for HTTP (all frames of one packet go out in one write) or text
frames for the WebSocket. Chunk framing is pre-encoded so a token chunk costs one ``json.dumps``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

Frames = list[bytes]

OPENAI_ERROR_TYPES = {400: "BadRequestError", 429: "RateLimitError", 500: "InternalServerError"}
ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 429: "rate_limit_error", 500: "api_error"}
SIGNATURE = "c2ltdWxhdGVkLXRoaW5raW5nLXNpZ25hdHVyZQ=="  # stands in for Anthropic's opaque signature


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def sse(obj: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {dumps(obj)}\n\n".encode()


def openai_error(status: int, message: str) -> dict[str, Any]:
    """vLLM's flat error object (also used for the WebSocket's refused upgrades)."""
    return {
        "object": "error",
        "message": message,
        "type": OPENAI_ERROR_TYPES.get(status, "Error"),
        "param": None,
        "code": status,
    }


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as *reported* (already multiplied by ``misreport_usage``)."""

    prompt: int
    completion: int
    reasoning: int
    cached: int

    @classmethod
    def reported(cls, factor: float, *, prompt: int, completion: int, reasoning: int, cached: int) -> Usage:
        return cls(*(round(n * factor) for n in (prompt, completion, reasoning, cached)))

    def openai(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.prompt + self.completion,
            "prompt_tokens_details": {"cached_tokens": self.cached},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning},
        }


@dataclass(frozen=True, slots=True)
class WireContext:
    request_id: str
    model: str
    created: int  # wall-clock seconds, a label only
    think_format: str  # "field" | "tags"
    include_usage: bool


class Wire(ABC):
    heartbeat: Frames

    def __init__(self, ctx: WireContext) -> None:
        self.ctx = ctx

    def opening(self, usage: Usage) -> Frames:
        """Frames sent as soon as the stream opens, before any token (never content)."""
        return []

    @abstractmethod
    def thinking(self, text: str, *, first: bool, last: bool) -> Frames:
        """``last``: thinking ends here by itself (not cut by max_tokens)."""

    @abstractmethod
    def answer(self, text: str, *, first: bool) -> Frames: ...

    @abstractmethod
    def finish(self, reason: str, usage: Usage) -> Frames:
        """Everything after the last token: finish reason, usage (if due), end marker."""

    @abstractmethod
    def stream_error(self, message: str) -> Frames: ...

    @abstractmethod
    def cut(self) -> Frames:
        """A frame broken off mid-JSON (the ``cut_json`` fault)."""

    def body(self, thinking: str, answer: str, reason: str, usage: Usage) -> dict[str, Any]:
        """Non-streaming response body."""
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        """vLLM's flat error object."""
        return {
            "object": "error",
            "message": message,
            "type": OPENAI_ERROR_TYPES.get(status, "Error"),
            "param": None,
            "code": status,
        }

    def context_message(self, prompt_tokens: int, max_context: int) -> str:
        return (
            f"This model's maximum context length is {max_context} tokens. However, you requested "
            f"{prompt_tokens} tokens in the messages, Please reduce the length of the messages."
        )


class _OpenAIWire(Wire):
    """Shared by Chat Completions and Completions: ``data: {json}`` chunks and ``data: [DONE]``."""

    heartbeat = [b": ping\n\n"]
    object_name = ""
    id_prefix = ""

    def __init__(self, ctx: WireContext) -> None:
        super().__init__(ctx)
        self.envelope = {
            "id": self.id_prefix + ctx.request_id,
            "object": self.object_name,
            "created": ctx.created,
            "model": ctx.model,
        }
        self._head = "data: " + dumps(self.envelope)[:-1] + ',"choices":[{"index":0,'

    def _chunk(self, choice_head: str, text: str, choice_tail: str) -> Frames:
        return [f"{self._head}{choice_head}{dumps(text)}{choice_tail}".encode()]

    def finish(self, reason: str, usage: Usage) -> Frames:
        frames = [sse({**self.envelope, "choices": [self._finish_choice(reason)]})]
        if self.ctx.include_usage:
            frames.append(sse({**self.envelope, "choices": [], "usage": usage.openai()}))
        return [*frames, b"data: [DONE]\n\n"]

    @abstractmethod
    def _finish_choice(self, reason: str) -> dict[str, Any]: ...

    def stream_error(self, message: str) -> Frames:
        return [sse({"error": self.error_body(500, message)}), b"data: [DONE]\n\n"]


class ChatWire(_OpenAIWire):
    object_name = "chat.completion.chunk"
    id_prefix = "chatcmpl-"
    _TAIL = '},"logprobs":null,"finish_reason":null}]}\n\n'

    def opening(self, usage: Usage) -> Frames:
        return [
            sse(
                {
                    **self.envelope,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": ""},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ],
                }
            )
        ]

    def thinking(self, text: str, *, first: bool, last: bool) -> Frames:
        if self.ctx.think_format == "field":
            return self._chunk('"delta":{"reasoning_content":', text, self._TAIL)
        return self.answer(("<think>" if first else "") + text + ("</think>" if last else ""), first=False)

    def answer(self, text: str, *, first: bool) -> Frames:
        return self._chunk('"delta":{"content":', text, self._TAIL)

    def _finish_choice(self, reason: str) -> dict[str, Any]:
        return {"index": 0, "delta": {}, "logprobs": None, "finish_reason": reason}

    def cut(self) -> Frames:
        return [b'data: {"choices":[{"delta":{"cont']

    def body(self, thinking: str, answer: str, reason: str, usage: Usage) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": answer}
        if self.ctx.think_format == "tags" and thinking:
            message["content"] = f"<think>{thinking}</think>{answer}"
        elif thinking:
            message["reasoning_content"] = thinking
        return {
            **self.envelope,
            "object": "chat.completion",
            "usage": usage.openai(),
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reason}],
        }


class CompletionsWire(_OpenAIWire):
    """Legacy completions have no reasoning field: thinking always arrives as ``<think>`` tags in text."""

    object_name = "text_completion"
    id_prefix = "cmpl-"
    _TAIL = ',"logprobs":null,"finish_reason":null}]}\n\n'

    def thinking(self, text: str, *, first: bool, last: bool) -> Frames:
        return self.answer(("<think>" if first else "") + text + ("</think>" if last else ""), first=False)

    def answer(self, text: str, *, first: bool) -> Frames:
        return self._chunk('"text":', text, self._TAIL)

    def _finish_choice(self, reason: str) -> dict[str, Any]:
        return {"index": 0, "text": "", "logprobs": None, "finish_reason": reason}

    def cut(self) -> Frames:
        return [b'data: {"choices":[{"te']

    def body(self, thinking: str, answer: str, reason: str, usage: Usage) -> dict[str, Any]:
        text = f"<think>{thinking}</think>{answer}" if thinking else answer
        return {
            **self.envelope,
            "usage": usage.openai(),
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": reason}],
        }


class AnthropicWire(Wire):
    """Anthropic Messages: a thinking block, then a text block, each opened and closed explicitly."""

    heartbeat = [b'event: ping\ndata: {"type":"ping"}\n\n']
    STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}

    def __init__(self, ctx: WireContext) -> None:
        super().__init__(ctx)
        self._index = -1  # index of the most recently opened content block
        self._open = False
        self._text_head = 'event: content_block_delta\ndata: {"type":"content_block_delta","index":'

    def opening(self, usage: Usage) -> Frames:
        message: dict[str, Any] = {
            "id": "msg_" + self.ctx.request_id,
            "type": "message",
            "role": "assistant",
            "model": self.ctx.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": usage.prompt - usage.cached,
                "output_tokens": 1,
                "cache_read_input_tokens": usage.cached,
                "cache_creation_input_tokens": 0,
            },
        }
        return [sse({"type": "message_start", "message": message}, "message_start")]

    def _start_block(self, block: dict[str, Any]) -> Frames:
        frames = self._stop_block()
        self._index += 1
        self._open = True
        start = {"type": "content_block_start", "index": self._index, "content_block": block}
        return [*frames, sse(start, "content_block_start")]

    def _stop_block(self) -> Frames:
        if not self._open:
            return []
        self._open = False
        return [sse({"type": "content_block_stop", "index": self._index}, "content_block_stop")]

    def _delta(self, kind: str, field: str, text: str) -> bytes:
        return f'{self._text_head}{self._index},"delta":{{"type":"{kind}","{field}":{dumps(text)}}}}}\n\n'.encode()

    def thinking(self, text: str, *, first: bool, last: bool) -> Frames:
        frames = self._start_block({"type": "thinking", "thinking": ""}) if first else []
        frames.append(self._delta("thinking_delta", "thinking", text))
        if last:
            signature = {
                "type": "content_block_delta",
                "index": self._index,
                "delta": {"type": "signature_delta", "signature": SIGNATURE},
            }
            frames += [sse(signature, "content_block_delta"), *self._stop_block()]
        return frames

    def answer(self, text: str, *, first: bool) -> Frames:
        frames = self._start_block({"type": "text", "text": ""}) if first else []
        return [*frames, self._delta("text_delta", "text", text)]

    def finish(self, reason: str, usage: Usage) -> Frames:
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": self.STOP_REASONS[reason], "stop_sequence": None},
            "usage": {"output_tokens": usage.completion},
        }
        return [
            *self._stop_block(),
            sse(delta, "message_delta"),
            sse({"type": "message_stop"}, "message_stop"),
        ]

    def stream_error(self, message: str) -> Frames:
        return [sse({"type": "error", "error": {"type": "overloaded_error", "message": message}}, "error")]

    def cut(self) -> Frames:
        return [
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_del'
        ]

    def body(self, thinking: str, answer: str, reason: str, usage: Usage) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if thinking:
            content.append({"type": "thinking", "thinking": thinking, "signature": SIGNATURE})
        if answer:
            content.append({"type": "text", "text": answer})
        return {
            "id": "msg_" + self.ctx.request_id,
            "type": "message",
            "role": "assistant",
            "model": self.ctx.model,
            "content": content,
            "stop_reason": self.STOP_REASONS[reason],
            "stop_sequence": None,
            "usage": {
                "input_tokens": usage.prompt - usage.cached,
                "output_tokens": usage.completion,
                "cache_read_input_tokens": usage.cached,
                "cache_creation_input_tokens": 0,
            },
        }

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {"type": ANTHROPIC_ERROR_TYPES.get(status, "api_error"), "message": message},
        }

    def context_message(self, prompt_tokens: int, max_context: int) -> str:
        return f"prompt is too long: {prompt_tokens} tokens > {max_context} maximum"


class WsWire(Wire):
    """One JSON text frame per packet; see the package docstring for the frame types."""

    heartbeat = [b'{"type":"ping"}']

    def thinking(self, text: str, *, first: bool, last: bool) -> Frames:
        if self.ctx.think_format == "field":
            return [b'{"type":"thinking","text":' + dumps(text).encode() + b"}"]
        return self.answer(("<think>" if first else "") + text + ("</think>" if last else ""), first=False)

    def answer(self, text: str, *, first: bool) -> Frames:
        return [b'{"type":"text","text":' + dumps(text).encode() + b"}"]

    def finish(self, reason: str, usage: Usage) -> Frames:
        counts = {"prompt_tokens": usage.prompt, "completion_tokens": usage.completion}
        return [
            dumps({"type": "usage", "usage": counts}).encode(),
            dumps({"type": "done", "finish_reason": reason}).encode(),
        ]

    def stream_error(self, message: str) -> Frames:
        return [dumps({"type": "error", "error": message}).encode()]

    def cut(self) -> Frames:
        return [b'{"type":"text","text":" the']
