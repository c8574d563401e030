"""OpenAI Chat Completions and Completions over SSE (vLLM, SGLang, TGI, most commercial APIs)."""

from __future__ import annotations

from typing import Any

import orjson

from runner.protocols.base import (
    ChunkParser,
    HttpRequest,
    ProtocolError,
    base_headers,
    chat_messages,
    join_url,
    load_object,
    max_tokens_for,
    request_params,
)
from runner.records import Packet, PacketKind
from runner.spec import EndpointSpec, Prompt

_ANSWER = PacketKind.ANSWER


def _body(ep: EndpointSpec, prompt: Prompt) -> dict[str, Any]:
    body = request_params(ep, prompt)
    body.update(stream=True, stream_options={"include_usage": True})
    max_tokens = max_tokens_for(ep, prompt)
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


class ChatAdapter:
    name = "openai-chat"

    def build(self, ep: EndpointSpec, prompt: Prompt) -> HttpRequest:
        body = _body(ep, prompt)
        body["messages"] = chat_messages(prompt)
        return HttpRequest(join_url(ep.base_url, "chat/completions"), base_headers(ep), body)

    def parser(self, analyzer: Any) -> ChunkParser:
        return OpenAIChunkParser(analyzer)


class CompletionsAdapter(ChatAdapter):
    name = "openai-completions"

    def build(self, ep: EndpointSpec, prompt: Prompt) -> HttpRequest:
        from runner.protocols.base import prompt_text

        body = _body(ep, prompt)
        body["prompt"] = prompt_text(prompt)
        return HttpRequest(join_url(ep.base_url, "completions"), base_headers(ep), body)


class OpenAIChunkParser(ChunkParser):
    """One ``data:`` line at a time. Works for chat (``delta``) and completions (``text``) chunks."""

    def event(self, event: str, data: str, t_ns: int) -> None:
        a = self.analyzer
        if event == "comment":
            a.add(PacketKind.HEARTBEAT, t_ns)
            return
        if event == "ping":
            a.add(PacketKind.HEARTBEAT, t_ns)
            return
        if data == "[DONE]":
            a.done = True
            a.add(PacketKind.DONE, t_ns)
            return
        if not data.strip():
            a.add(PacketKind.HEARTBEAT, t_ns)
            return
        obj = load_object(data)
        if not self._plain_token(obj, t_ns):
            self.chunk(obj, t_ns)

    def json_event(self, data: bytes, t_ns: int) -> None:
        """One ``data:`` event whose payload is a JSON object, as raw bytes (the transport's fast
        path); the same result as :meth:`event` with its text."""
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ProtocolError(f"malformed JSON in stream: {data[:80]!r}") from None
        if type(obj) is not dict:
            raise ProtocolError(f"stream event is not a JSON object: {data[:80]!r}")
        if not self._plain_token(obj, t_ns):
            self.chunk(obj, t_ns)

    def _plain_token(self, obj: dict[str, Any], t_ns: int) -> bool:
        """The chunk nearly every event is: one choice whose delta is only answer text, no finish,
        usage or error, outside any ``<think>`` handling. Stored without the general walk below."""
        choices = obj.get("choices")
        if not choices or obj.get("usage") is not None or obj.get("error") or self.think.in_think:
            return False
        choice = choices[0]
        if type(choice) is not dict or choice.get("finish_reason"):
            return False
        delta = choice.get("delta")
        if type(delta) is not dict or len(delta) != 1:
            return False
        content = delta.get("content")
        if type(content) is not str or not content or "<" in content or self.think.pending:
            return False
        a = self.analyzer
        a.packets.append(Packet(_ANSWER, t_ns, content))
        a.last_packet_ns = a.last_content_ns = t_ns
        return True

    def chunk(self, obj: dict[str, Any], t_ns: int) -> None:
        a = self.analyzer
        if obj.get("error"):
            err = obj["error"]
            message = err.get("message", str(err)) if isinstance(err, dict) else str(err)
            status = err.get("code") if isinstance(err, dict) and isinstance(err.get("code"), int) else None
            a.error_packet(t_ns, message, status)
            return
        choices = obj.get("choices")
        usage = obj.get("usage")
        if not choices:
            if isinstance(usage, dict):
                a.add_usage(t_ns, usage)
            else:
                a.add(PacketKind.HEARTBEAT, t_ns)  # keep-alive chunk with nothing in it
            return
        if isinstance(usage, dict):  # continuous usage stats ride along with choices
            a.add_usage(t_ns, usage, packet=False)
        choice = choices[0]
        if not isinstance(choice, dict):
            raise ProtocolError("choices[0] is not an object")
        delta = choice.get("delta")
        emitted = False
        if isinstance(delta, dict):
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                a.add(PacketKind.THINKING, t_ns, reasoning)
                emitted = True
            content = delta.get("content")
            if content:
                self.content(content, t_ns)
                emitted = True
            if delta.get("tool_calls"):
                a.add(PacketKind.TOOL_CALL, t_ns, str(delta["tool_calls"]))
                emitted = True
        else:
            text = choice.get("text")
            if text:
                self.content(text, t_ns)
                emitted = True
        finish = choice.get("finish_reason")
        if finish:
            a.finish(t_ns, finish)
        elif not emitted:
            role = isinstance(delta, dict) and delta.get("role")
            a.add(PacketKind.ROLE if role else PacketKind.HEARTBEAT, t_ns)
