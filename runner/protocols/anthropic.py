"""Anthropic Messages over SSE: thinking_delta / text_delta, ping, message_delta usage, error."""

from __future__ import annotations

from typing import Any

from runner.protocols.base import (
    ChunkParser,
    HttpRequest,
    chat_messages,
    join_url,
    load_object,
    max_tokens_for,
    request_params,
)
from runner.records import PacketKind
from runner.spec import EndpointSpec, Prompt

_STOP = {"max_tokens": "length", "end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls"}


class AnthropicAdapter:
    name = "anthropic"

    def build(self, ep: EndpointSpec, prompt: Prompt) -> HttpRequest:
        body = request_params(ep, prompt)
        body.update(stream=True, messages=chat_messages(prompt))
        body["max_tokens"] = max_tokens_for(ep, prompt) or 1024  # required by the API
        headers = {"content-type": "application/json", "accept": "text/event-stream"}
        headers["anthropic-version"] = "2023-06-01"
        if ep.api_key:
            headers["x-api-key"] = ep.api_key
        headers.update(ep.headers)
        return HttpRequest(join_url(ep.base_url, "messages"), headers, body)

    def parser(self, analyzer: Any) -> ChunkParser:
        return AnthropicParser(analyzer)


class AnthropicParser(ChunkParser):
    def event(self, event: str, data: str, t_ns: int) -> None:
        a = self.analyzer
        if event in ("comment", "ping"):
            a.add(PacketKind.HEARTBEAT, t_ns)
            return
        obj = load_object(data) if data else {}
        kind = event or obj.get("type", "")
        if kind == "content_block_delta":
            delta = obj.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "thinking_delta":
                a.add(PacketKind.THINKING, t_ns, delta.get("thinking", ""))
            elif dtype == "text_delta":
                a.add(PacketKind.ANSWER, t_ns, delta.get("text", ""))
            elif dtype == "input_json_delta":
                a.add(PacketKind.TOOL_CALL, t_ns, delta.get("partial_json", ""))
            else:  # signature_delta and future kinds carry nothing a user reads
                a.add(PacketKind.ROLE, t_ns)
        elif kind == "message_start":
            usage = (obj.get("message") or {}).get("usage") or {}
            a.add_usage(t_ns, usage, packet=False)
            a.add(PacketKind.ROLE, t_ns)
        elif kind == "message_delta":
            reason = (obj.get("delta") or {}).get("stop_reason")
            if reason:
                a.finish_reason = _STOP.get(reason, reason)
            a.add_usage(t_ns, obj.get("usage") or {})
        elif kind == "message_stop":
            a.done = True
            a.add(PacketKind.DONE, t_ns)
        elif kind == "error":
            err = obj.get("error") or {}
            a.error_packet(t_ns, err.get("message", data) if isinstance(err, dict) else str(err))
        else:  # content_block_start / content_block_stop
            a.add(PacketKind.ROLE, t_ns)
