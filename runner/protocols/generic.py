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


GENERIC_KEYS = frozenset(GenericFormat.__dataclass_fields__)


def generic_format(values: dict[str, Any]) -> GenericFormat:
    """A format from a mapping, refusing what a typo would otherwise drop silently: unknown keys,
    a kind map whose values are not packet kinds, a template that is not JSON once filled."""
    unknown = sorted(set(values) - GENERIC_KEYS)
    if unknown:
        raise ValueError(
            f"unknown stream-format keys {', '.join(unknown)}; known: {', '.join(sorted(GENERIC_KEYS))}"
        )
    kind_map = values.get("kind_map") or {}
    if not isinstance(kind_map, dict) or any(str(v) not in _KINDS for v in kind_map.values()):
        raise ValueError(f"kind map values must be packet kinds: {', '.join(sorted(_KINDS))}")
    fmt = GenericFormat(**{k: v for k, v in values.items() if v is not None})
    problem = check_template(fmt)
    if problem:
        raise ValueError(problem)
    return fmt


def classify_sample(fmt: GenericFormat, sample: str) -> list[dict[str, Any]]:
    """Each line of a pasted stream (SSE ``data:``/``event:``/``:`` lines, or one JSON message per line
    as a WebSocket sends them) as the generic parser reads it: ``{"line", "packets", "note"}`` with the
    packet kinds it yields (thinking, answer, usage, heartbeat, done, error…), ``unknown`` when the
    line is not one the format can read. The same parser and analyzer as a run, so what it shows
    is what a run would measure."""
    from runner.analysis import StreamAnalyzer
    from runner.protocols.base import ProtocolError

    analyzer = StreamAnalyzer(0, 0)
    parser = GenericParser(analyzer, fmt)
    event = "message"
    rows: list[dict[str, Any]] = []
    for number, raw in enumerate(sample.splitlines()[:500], start=1):
        line = raw.strip()
        if not line:
            event = "message"
            continue
        if line.startswith("event:"):
            event = line[6:].strip() or "message"
            rows.append({"line": number, "text": raw[:300], "packets": [], "note": f"event name {event!r}"})
            continue
        if line.startswith(":"):
            name, data = "comment", line[1:]
        else:
            name, data = event, line[5:].strip() if line.startswith("data:") else line
        before, reason, error = len(analyzer.packets), analyzer.finish_reason, analyzer.error
        try:
            parser.event(name, data, number)
        except ProtocolError as exc:
            rows.append({"line": number, "text": raw[:300], "packets": ["unknown"], "note": str(exc)})
            continue
        kinds = [p.kind.value for p in analyzer.packets[before:]]
        note = ""
        if analyzer.finish_reason != reason:
            note = f"finish reason {analyzer.finish_reason!r}"
        if analyzer.error != error:
            note = f"error: {analyzer.error}"
        text = "".join(p.text for p in analyzer.packets[before:])
        if text:
            note = (note + "; " if note else "") + f"text {text[:80]!r}"
        if kinds == ["heartbeat"] and name not in ("comment", "ping") and not _known_kind(fmt, parser, data):
            what = "its kind is not in the map" if fmt.kind_path else "no path of the format matched"
            kinds, note = ["unknown"], f"{what}: read as a keep-alive"
        rows.append({"line": number, "text": raw[:300], "packets": kinds, "note": note})
    return rows


def _known_kind(fmt: GenericFormat, parser: GenericParser, data: str) -> bool:
    """With a kind field: the line's kind maps to a packet kind (a mapped keep-alive is known)."""
    if not fmt.kind_path or data.strip() == fmt.done_sentinel:
        return False
    raw = dig(load_object(data), parser.kind_path)
    return _KINDS.get(fmt.kind_map.get(str(raw), str(raw))) is not None
