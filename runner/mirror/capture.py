"""What a capture keeps of a request, and what it never keeps.

One JSONL line per request: arrival time, method, path, the request body, headers without secrets,
and the production response's timings, outcome and answer. A WebSocket session is one line too
(``"transport": "websocket"``): the upgrade's path and headers, and the caller's frames in place of
a body (its first, the ask, as ``body``), redacted the same way. Credentials never reach the file:
``Authorization``, cookies, anything named like a key, token or secret, the shadow's own headers and
any header the user names are dropped, and so are query parameters named like credentials and body
or frame fields named like them at any depth (``{"metadata": {"api_key": …}}``). For
privacy the prompt (and answer) text can be replaced by a hash or dropped; a replay then sends a
synthetic prompt of the recorded length instead.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import IO, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

Privacy = Literal["keep", "hash", "drop"]
PRIVACY: tuple[str, ...] = ("keep", "hash", "drop")
FORMAT = "llmperf-capture/1"

# Body fields, matched whole: "max_tokens" is a parameter, "api_key" a credential.
_SECRET_FIELD = re.compile(
    r"(api[-_]?key|(access[-_]?)?token|auth(orization)?|password|secret|credentials?)", re.I
)
_SECRET_NAME = re.compile(r"auth|cookie|api[-_]?key|token|secret|password|session|signature", re.IGNORECASE)
# Transport framing, never part of what a request means.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


def is_secret_header(name: str, extra: Iterable[str] = ()) -> bool:
    low = name.lower()
    return bool(_SECRET_NAME.search(low)) or low in {e.lower() for e in extra}


def safe_headers(headers: Iterable[tuple[str, str]], extra: Iterable[str] = ()) -> dict[str, str]:
    """Headers worth keeping in a capture: no credentials, no transport framing."""
    names = {e.lower() for e in extra}
    return {
        k.lower(): v for k, v in headers if k.lower() not in HOP_BY_HOP and not is_secret_header(k, names)
    }


def safe_path(path_qs: str) -> str:
    """The path with credential-like query parameters (``?key=…``, ``?api_key=…``) removed."""
    parts = urlsplit(path_qs)
    if not parts.query:
        return path_qs
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _credential_param(k)]
    return parts.path + ("?" + urlencode(kept) if kept else "")


def _credential_param(name: str) -> bool:
    return bool(_SECRET_NAME.search(name)) or name.lower() in ("key", "sig", "code")


def redact_text(text: str, mode: Privacy) -> str | None:
    if mode == "keep":
        return text
    if mode == "hash":
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:32]
    return None


def redact_body(body: Any, mode: Privacy) -> Any:
    """The body without credential fields (``api_key``…) at any depth, as a WebSocket frame's
    (:func:`strip_secrets`), and with every prompt text (messages' contents, ``prompt``,
    ``system``) hashed or dropped unless ``keep``; every other field (model, max_tokens,
    temperature, tools…) as it was."""
    if not isinstance(body, dict):
        return body
    out = strip_secrets(body)  # whatever the privacy mode
    if mode == "keep":
        return out
    if isinstance(out.get("messages"), list):
        out["messages"] = [_redact_message(m, mode) for m in out["messages"]]
    for key in ("prompt", "system", "input"):
        if key in out:
            out[key] = _redact_content(out[key], mode)
    return out


# In a WebSocket frame, of any provider's own shape, every string is taken for text the caller wrote
# unless its key names what kind of frame, model or role it is.
_FRAME_LABELS = frozenset({"type", "event", "kind", "action", "op", "model", "role", "id", "name", "format"})


def redact_frame(frame: dict[str, Any], mode: Privacy) -> Any:
    """A caller's WebSocket frame: credential fields dropped at any depth; with ``hash`` or ``drop``
    every string not under a label key (``type``, ``model``, ``role``…) hashed or dropped too — a
    prompt may sit under any key in a provider's own frames."""
    return _redact_strings(frame, mode, "")


def redact_captured_frame(frame: Any, mode: Privacy) -> Any:
    """A capture line's frame (``{"t_ms", "json" | "text" | "base64"}``) redacted once more, for
    an upload imported with a stricter privacy than it was captured with."""
    if not isinstance(frame, dict):
        return None
    out = {k: v for k, v in frame.items() if k in ("t_ms", "binary")}
    for key in ("json", "text", "base64"):
        value = frame.get(key)
        if isinstance(value, dict):
            out[key] = redact_frame(value, mode)
        elif isinstance(value, str):
            out[key] = redact_text(value, mode)
    return out


def strip_secrets(value: Any) -> Any:
    """``value`` without credential fields (``api_key``, ``token``, ``password``…) at any depth of
    its dicts and lists; nothing else changed."""
    return _redact_strings(value, "keep", "")


def _redact_strings(value: Any, mode: Privacy, key: str) -> Any:
    if isinstance(value, dict):
        return {k: _redact_strings(v, mode, k) for k, v in value.items() if not _SECRET_FIELD.fullmatch(k)}
    if isinstance(value, list):
        return [_redact_strings(v, mode, key) for v in value]
    if isinstance(value, str) and key not in _FRAME_LABELS:
        return redact_text(value, mode)
    return value


def _redact_message(message: Any, mode: Privacy) -> Any:
    if not isinstance(message, dict) or "content" not in message:
        return message
    return {**message, "content": _redact_content(message["content"], mode)}


def _redact_content(content: Any, mode: Privacy) -> Any:
    if isinstance(content, str):
        return redact_text(content, mode)
    if isinstance(content, list):
        return [_redact_content(c, mode) for c in content]
    if isinstance(content, dict):
        return {k: _redact_content(v, mode) if k in ("text", "content") else v for k, v in content.items()}
    return content


class CaptureWriter:
    """Appends capture lines; each line is flushed, so a killed mirror loses at most the one in hand."""

    def __init__(self, out: IO[bytes], privacy: Privacy = "keep") -> None:
        self.out, self.privacy = out, privacy
        self.lines = 0

    def write(
        self,
        *,
        t_s: float,
        epoch: float,
        request_id: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        production: Mapping[str, Any],
    ) -> None:
        line: dict[str, Any] = {
            "format": FORMAT,
            "id": request_id,
            "t_s": round(t_s, 6),
            "ts": epoch,
            "method": method,
            "path": path,
            "headers": dict(headers),
        }
        try:
            line["body"] = redact_body(orjson.loads(body), self.privacy)
        except orjson.JSONDecodeError:
            line["body"] = None
            line["body_text"] = redact_text(body.decode("utf-8", "replace"), self.privacy)
        self._finish(line, production)

    def write_ws(
        self,
        *,
        t_s: float,
        epoch: float,
        request_id: str,
        path: str,
        headers: Mapping[str, str],
        frames: list[tuple[float, str | bytes]],
        sent: int,
        truncated: bool,
        production: Mapping[str, Any],
    ) -> None:
        """A WebSocket session: the upgrade's path and headers, and the caller's frames (``t_ms`` from
        the first) in place of a body, each redacted as a body is; the first, the ask, is also the
        line's ``body`` when it is a JSON object, which is what a replay sends."""
        line: dict[str, Any] = {
            "format": FORMAT,
            "id": request_id,
            "t_s": round(t_s, 6),
            "ts": epoch,
            "transport": "websocket",
            "method": "GET",
            "path": path,
            "headers": dict(headers),
            "frames": [{"t_ms": t_ms, **self._frame(data)} for t_ms, data in frames],
            "frames_sent": sent,
        }
        if truncated:
            line["frames_truncated"] = True  # past the mirror's max_event_bytes: counted, not kept
        first = line["frames"][0] if line["frames"] else {}
        line["body"] = first.get("json") if isinstance(first.get("json"), dict) else None
        self._finish(line, production)

    def _finish(self, line: dict[str, Any], production: Mapping[str, Any]) -> None:
        """The privacy mark and production's side (its answer redacted as the body is), then write."""
        if self.privacy != "keep":
            line["redacted"] = self.privacy
        prod = dict(production)
        if "answer_text" in prod:
            prod["answer_text"] = redact_text(str(prod["answer_text"]), self.privacy)
        line["production"] = prod
        self._put(line)

    def _frame(self, data: str | bytes) -> dict[str, Any]:
        if isinstance(data, bytes):
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                return {"binary": True, "base64": redact_text(base64.b64encode(data).decode(), self.privacy)}
        else:
            text = data
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            return {"json": redact_frame(obj, self.privacy)}
        return {"text": redact_text(text, self.privacy)}

    def _put(self, line: dict[str, Any]) -> None:
        self.out.write(orjson.dumps(line) + b"\n")
        self.out.flush()
        self.lines += 1
