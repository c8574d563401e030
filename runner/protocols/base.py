"""What every protocol adapter provides, and the pieces they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from runner.analysis import StreamAnalyzer
from runner.records import PacketKind
from runner.spec import EndpointSpec, Prompt


class ProtocolError(ValueError):
    """The server sent something that is not the protocol (cut JSON, wrong shape)."""


@dataclass(slots=True)
class HttpRequest:
    url: str
    headers: dict[str, str]
    body: dict[str, Any] | str
    transport: str = "sse"  # "sse" | "ws" | "sdk"


@dataclass(slots=True)
class ChunkParser:
    """Turns one stream's events into packets on the analyzer. One instance per request."""

    analyzer: StreamAnalyzer
    think: ThinkSplitter = field(default_factory=lambda: ThinkSplitter())

    def event(self, event: str, data: str, t_ns: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def content(self, text: str, t_ns: int) -> None:
        """Answer text that may hold ``<think>…</think>`` (models served without a reasoning parser)."""
        for kind, part in self.think.split(text):
            self.analyzer.add(kind, t_ns, part)

    def end(self, t_ns: int) -> None:
        """The stream is over: a held-back ``<`` that began no tag is text after all."""
        held = self.think.flush()
        if not held:
            return
        kind = PacketKind.THINKING if self.think.in_think else PacketKind.ANSWER
        for packet in reversed(self.analyzer.packets):  # it arrived with that packet's chunk
            if packet.kind is kind:
                packet.text += held
                return
        self.analyzer.add(kind, t_ns, held)


class ThinkSplitter:
    """Splits streamed content on ``<think>`` / ``</think>``, even when a tag is cut across chunks."""

    __slots__ = ("in_think", "pending")
    OPEN, CLOSE = "<think>", "</think>"

    def __init__(self) -> None:
        self.in_think = False
        self.pending = ""

    def split(self, text: str) -> list[tuple[PacketKind, str]]:
        if "<" not in text and not self.pending:  # fast path: the usual token
            return [(PacketKind.THINKING if self.in_think else PacketKind.ANSWER, text)]
        text, self.pending = self.pending + text, ""
        out: list[tuple[PacketKind, str]] = []
        while text:
            tag = self.CLOSE if self.in_think else self.OPEN
            kind = PacketKind.THINKING if self.in_think else PacketKind.ANSWER
            i = text.find(tag)
            if i >= 0:
                if i:
                    out.append((kind, text[:i]))
                text = text[i + len(tag) :]
                self.in_think = not self.in_think
                continue
            keep = _partial_suffix(text, tag)
            if keep:
                self.pending, text = text[-keep:], text[:-keep]
            if text:
                out.append((kind, text))
            break
        if not out:
            # A chunk holding only a tag, or what may start one (held back until the next chunk), is
            # still a generated token: it counts at its own arrival time, as thinking, which is what
            # a tag opens (a lone "<" that turns out to be answer text is the rare exception).
            out.append((PacketKind.THINKING, ""))
        return out

    def flush(self) -> str:
        """Text held back as a possible tag start when the stream ended: it was answer text."""
        held, self.pending = self.pending, ""
        return held


def _partial_suffix(text: str, tag: str) -> int:
    for k in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-k:]):
            return k
    return 0


def load_object(data: str) -> dict[str, Any]:
    """One event's JSON payload; anything else is a protocol error, never an exception elsewhere."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ProtocolError(f"malformed JSON in stream: {data[:80]!r}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"stream event is not a JSON object: {data[:80]!r}")
    return obj


def base_headers(ep: EndpointSpec) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept": "text/event-stream"}
    if ep.api_key:
        headers["authorization"] = f"Bearer {ep.api_key}"
    headers.update(ep.headers)
    return headers


def join_url(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.lstrip("/") if path else base


def chat_messages(prompt: Prompt) -> list[dict[str, Any]]:
    return prompt.messages if prompt.messages else [{"role": "user", "content": prompt.text}]


def prompt_text(prompt: Prompt) -> str:
    if prompt.text or not prompt.messages:
        return prompt.text
    return "\n".join(str(m.get("content", "")) for m in prompt.messages)


OWNED_FIELDS = frozenset({"max_tokens", "messages", "prompt", "stream", "stream_options"})


def request_params(ep: EndpointSpec, prompt: Prompt) -> dict[str, Any]:
    """The endpoint's params with the prompt's own over them, less what the adapter sets itself.
    The endpoint's model wins; a prompt's model is used when the endpoint names none."""
    merged = {**ep.params, **(prompt.params or {})}
    body = {k: v for k, v in merged.items() if k not in OWNED_FIELDS}
    body["model"] = ep.model or str(merged.get("model") or "")
    return body


def max_tokens_for(ep: EndpointSpec, prompt: Prompt) -> int | None:
    if prompt.max_tokens:
        return prompt.max_tokens
    value = ep.params.get("max_tokens")
    return int(value) if value is not None else None


def dig(obj: Any, path: tuple[str, ...]) -> Any:
    """``choices.0.delta.content`` style lookup; None when any step is missing."""
    for step in path:
        if isinstance(obj, dict):
            obj = obj.get(step)
        elif isinstance(obj, list) and step.isdigit() and int(step) < len(obj):
            obj = obj[int(step)]
        else:
            return None
        if obj is None:
            return None
    return obj


def split_path(path: str) -> tuple[str, ...]:
    return tuple(p for p in path.split(".") if p)
