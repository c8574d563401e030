"""Protocol adapters: each builds a request and parses its stream into the same packet kinds."""

from __future__ import annotations

from typing import Any

from runner.protocols.anthropic import AnthropicAdapter
from runner.protocols.base import ChunkParser, HttpRequest, ProtocolError
from runner.protocols.generic import GenericAdapter, GenericParser, check_template
from runner.protocols.openai import ChatAdapter, CompletionsAdapter, OpenAIChunkParser

__all__ = [
    "ChunkParser",
    "HttpRequest",
    "ProtocolError",
    "adapter_for",
    "check_template",
    "make_parser",
]


class SdkAdapter(ChatAdapter):
    name = "openai-sdk"

    def build(self, ep: Any, prompt: Any) -> HttpRequest:
        req = super().build(ep, prompt)
        req.transport = "sdk"
        return req


_ADAPTERS: dict[str, Any] = {
    "openai-chat": ChatAdapter(),
    "openai-completions": CompletionsAdapter(),
    "anthropic": AnthropicAdapter(),
    "generic-sse": GenericAdapter("sse"),
    "generic-ws": GenericAdapter("ws"),
    "openai-sdk": SdkAdapter(),
}


def adapter_for(protocol: str) -> Any:
    try:
        return _ADAPTERS[protocol]
    except KeyError:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(_ADAPTERS)}") from None


def make_parser(protocol: str, analyzer: Any, endpoint: Any) -> ChunkParser:
    if protocol in ("generic-sse", "generic-ws"):
        return GenericParser(analyzer, endpoint.generic)
    if protocol == "anthropic":
        return AnthropicAdapter().parser(analyzer)
    return OpenAIChunkParser(analyzer)
