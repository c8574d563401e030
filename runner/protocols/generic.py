"""Any provider's own format, by configuration: a body template plus JSON paths (SSE or WebSocket)."""

from __future__ import annotations

from typing import Any

import orjson

from runner.protocols.base import (
    ChunkParser,
    HttpRequest,
    base_headers,
    chat_messages,
    dig,
    join_url,
    load_object,
    max_tokens_for,
    prompt_text,
    split_path,
)
from runner.records import PacketKind
from runner.spec import EndpointSpec, GenericFormat, Prompt


def render_body(fmt: GenericFormat, ep: EndpointSpec, prompt: Prompt) -> str:
    """Fill the template's placeholders with JSON values; the result must parse as JSON."""
    values = {
        "prompt": prompt_text(prompt),
        "messages": chat_messages(prompt),
        "model": ep.model,
        "max_tokens": max_tokens_for(ep, prompt),
    }
    body = fmt.body_template
    for key, value in values.items():
        body = body.replace("{{" + key + "}}", orjson.dumps(value).decode())
    return body


def check_template(fmt: GenericFormat) -> str | None:
    """A clear message when the template is not JSON once filled, else None."""
    ep = EndpointSpec(protocol="generic-sse", base_url="http://x", model="m")
    try:
        orjson.loads(render_body(fmt, ep, Prompt(id="check", text="hello")))
    except orjson.JSONDecodeError as exc:
        return f"body template is not valid JSON after filling placeholders: {exc}"
    return None


class GenericAdapter:
    def __init__(self, transport: str) -> None:
        self.transport = transport
        self.name = "generic-ws" if transport == "ws" else "generic-sse"

    def build(self, ep: EndpointSpec, prompt: Prompt) -> HttpRequest:
        fmt = ep.generic
        url = join_url(ep.base_url, fmt.path)
        if self.transport == "ws":
            url = url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        body = render_body(fmt, ep, prompt)
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"body template is not valid JSON once filled: {exc}") from None
        return HttpRequest(url, base_headers(ep), body, transport=self.transport)

    def parser(self, analyzer: Any, fmt: GenericFormat | None = None) -> ChunkParser:
        return GenericParser(analyzer, fmt or GenericFormat())


_KINDS = {k.value: k for k in PacketKind}


class GenericParser(ChunkParser):
    def __init__(self, analyzer: Any, fmt: GenericFormat) -> None:
        super().__init__(analyzer)
        self.fmt = fmt
        self.paths = {
            name: split_path(getattr(fmt, name))
            for name in (
                "thinking_path",
                "answer_path",
                "usage_path",
                "finish_path",
                "done_path",
                "error_path",
            )
        }
        self.kind_path = split_path(fmt.kind_path)

    def event(self, event: str, data: str, t_ns: int) -> None:
        a = self.analyzer
        if event in ("comment", "ping"):
            a.add(PacketKind.HEARTBEAT, t_ns)
            return
        if self.fmt.done_sentinel and data.strip() == self.fmt.done_sentinel:
            a.done = True
            a.add(PacketKind.DONE, t_ns)
            return
        obj = load_object(data)
        if self.kind_path:
            self._by_kind(obj, t_ns)
        else:
            self._by_paths(obj, t_ns)

    def _by_kind(self, obj: dict[str, Any], t_ns: int) -> None:
        a = self.analyzer
        raw = dig(obj, self.kind_path)
        kind = _KINDS.get(self.fmt.kind_map.get(str(raw), str(raw)))
        text = dig(obj, self.paths["answer_path"])
        if kind is PacketKind.USAGE:
            usage = dig(obj, self.paths["usage_path"])
            a.add_usage(t_ns, usage if isinstance(usage, dict) else {})
        elif kind is PacketKind.DONE:
            a.done = True
            a.finish(t_ns, _str(dig(obj, self.paths["finish_path"])))
        elif kind is PacketKind.ERROR:
            a.error_packet(t_ns, str(dig(obj, self.paths["error_path"]) or obj))
        elif kind in (PacketKind.THINKING, PacketKind.ANSWER, PacketKind.TOOL_CALL):
            a.add(kind, t_ns, str(text or ""))
        else:
            a.add(kind or PacketKind.HEARTBEAT, t_ns)

    def _by_paths(self, obj: dict[str, Any], t_ns: int) -> None:
        a, p = self.analyzer, self.paths
        error = dig(obj, p["error_path"])
        if error:
            a.error_packet(t_ns, str(error.get("message", error) if isinstance(error, dict) else error))
            return
        emitted = False
        thinking = dig(obj, p["thinking_path"]) if p["thinking_path"] else None
        if thinking:
            a.add(PacketKind.THINKING, t_ns, str(thinking))
            emitted = True
        answer = dig(obj, p["answer_path"])
        if answer:
            self.content(str(answer), t_ns)
            emitted = True
        usage = dig(obj, p["usage_path"])
        if isinstance(usage, dict):
            a.add_usage(t_ns, usage, packet=not emitted)
            emitted = True
        finish = _str(dig(obj, p["finish_path"]))
        if finish:
            a.finish(t_ns, finish)
            emitted = True
        if dig(obj, p["done_path"]) is True:
            a.done = True
            if not finish:
                a.add(PacketKind.DONE, t_ns)
            emitted = True
        if not emitted:
            a.add(PacketKind.HEARTBEAT, t_ns)


def _str(value: Any) -> str | None:
    return str(value) if value not in (None, "", False) else None
