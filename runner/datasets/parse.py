"""Parse an uploaded dataset into prompt items, or say precisely why not.

Formats: JSONL, a JSON array, CSV/TSV, ShareGPT (an array or JSONL of ``{"conversations": [...]}``)
and plain text (one prompt per line). The format comes from ``fmt``, else the file extension, else
the content. A file is taken whole or not at all: on any error ``result.ok`` is False, ``items`` is
empty and ``errors`` lists what is wrong (up to :data:`MAX_ROW_ERRORS`, with 1-based line numbers;
line 0 means the file as a whole), so the caller saves nothing.

Bounds (:class:`Bounds`): a JSON row nested deeper than ``max_depth`` levels, a line longer than
``max_line_bytes`` (JSONL, text) and a prompt longer than ``max_prompt_chars`` characters (its messages'
text summed) are each refused per row, naming the limit; an over-long line is refused before it is
parsed, so one 30 MB line costs a length check, not a parse.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FORMATS",
    "MAX_ROW_ERRORS",
    "Bounds",
    "DatasetItem",
    "ParseResult",
    "RowError",
    "parse_dataset",
]

MiB = 1024 * 1024
MAX_ROW_ERRORS = 50
FORMATS = ("jsonl", "json", "sharegpt", "csv", "tsv", "text")
EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "text",
    ".text": "text",
}
ROLES = ("system", "developer", "user", "assistant", "tool")
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "system": "system",
}
MAGIC = {  # binary files people upload by mistake, named so the message helps
    b"\x89PNG\r\n\x1a\n": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF-": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (or .xlsx/.docx)",
    b"\x1f\x8b": "gzip-compressed data",
    b"PAR1": "a Parquet file",
    b"\xff\xfe": "UTF-16 text",
    b"\xfe\xff": "UTF-16 text",
}
_WS = re.compile(r"[ \t\r\n]*")


@dataclass(slots=True, frozen=True)
class Bounds:
    """How large one row may be; the dashboard takes these from settings (DATASET_MAX_*)."""

    max_depth: int = 64  # JSON nesting levels of one row (objects and arrays)
    max_line_bytes: int = 8 * MiB  # one line of JSONL or text, checked before it is parsed
    max_prompt_chars: int = 4_000_000  # one prompt's text (the sum of its messages' text)


@dataclass(slots=True)
class DatasetItem:
    prompt: str | None
    messages: list[dict[str, Any]] | None = None
    expected: str | None = None
    max_tokens: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class RowError:
    line: int  # 1-based line of the row; 0 = the whole file
    reason: str


@dataclass(slots=True)
class ParseResult:
    items: list[DatasetItem]
    errors: list[RowError]
    format: str

    @property
    def ok(self) -> bool:
        """True only without errors; with errors ``items`` is empty and nothing may be saved."""
        return not self.errors


class _FileError(Exception):
    """The file as a whole is unusable; ``line`` locates it when known."""

    def __init__(self, reason: str, line: int = 0) -> None:
        super().__init__(reason)
        self.line = line


class _RowInvalid(Exception):
    pass


Row = tuple[int, DatasetItem | str]  # (line, item or the reason the row is invalid)


def parse_dataset(
    data: bytes,
    *,
    filename: str,
    fmt: str | None = None,
    max_items: int = 100_000,
    max_bytes: int = 200 * MiB,
    multi_turn: bool = False,
    bounds: Bounds | None = None,
) -> ParseResult:
    """Parse ``data`` (the uploaded bytes of ``filename``); see the module docstring."""
    label = fmt or "unknown"
    bounds = bounds or Bounds()
    try:
        text = _decode(data, max_bytes=max_bytes)
        label = _detect(text, filename=filename, fmt=fmt)
        kinds: set[str] = set()
        rows = _bounded(_rows(text, label, multi_turn=multi_turn, kinds=kinds, bounds=bounds), bounds)
        items, errors = _collect(rows, max_items=max_items)
    except _FileError as exc:
        return ParseResult([], [RowError(exc.line, str(exc))], label)
    if kinds == {"sharegpt"}:
        label = "sharegpt"
    return ParseResult([] if errors else items, errors, label)


def _decode(data: bytes, *, max_bytes: int) -> str:
    if not data:
        raise _FileError("the file is empty")
    if len(data) > max_bytes:
        raise _FileError(f"the file is {_size(len(data))}; the limit is {_size(max_bytes)}")
    for magic, what in MAGIC.items():
        if data.startswith(magic):
            raise _FileError(f"this looks like {what}, not a UTF-8 text dataset")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise _FileError(f"binary data, not text (NUL byte at offset {nul})", _line_at(data, nul))
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = bom + exc.start
        raise _FileError(
            f"not UTF-8 text (byte 0x{data[offset]:02x} at offset {offset}); save the file as UTF-8",
            _line_at(data, offset),
        ) from None
    if not text.strip():
        raise _FileError("the file has no content (only blank lines)")
    return text


def _line_at(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _size(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n:,} bytes"


def _detect(text: str, *, filename: str, fmt: str | None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise _FileError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        return fmt
    ext = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    head = text.lstrip()[:1]
    if head in ("[", "{"):
        return "json" if head == "[" else "jsonl"
    first = next(csv.reader([text.split("\n", 1)[0]]), [])
    if "prompt" in (c.strip().lower() for c in first):
        return "csv"
    raise _FileError(
        f"cannot tell the format of {filename!r}: use a .jsonl, .json, .csv or .txt file, "
        "or choose the format explicitly"
    )


def _rows(text: str, label: str, *, multi_turn: bool, kinds: set[str], bounds: Bounds) -> Iterator[Row]:
    if label == "text":
        return _text_rows(text, bounds)
    if label in ("csv", "tsv"):
        return _csv_rows(text, delimiter="\t" if label == "tsv" else ",", bounds=bounds)
    array = label == "json" or (label == "sharegpt" and text.lstrip().startswith("["))
    values = _json_values(text, bounds) if array else _jsonl_values(text, bounds)
    return _json_rows(values, sharegpt=label == "sharegpt", multi_turn=multi_turn, kinds=kinds)


def _text_rows(text: str, bounds: Bounds) -> Iterator[Row]:
    for n, line in enumerate(text.split("\n"), 1):
        if too_long := line_too_long(line, bounds):
            yield n, too_long
        elif line.strip():
            yield n, DatasetItem(prompt=line.strip())


def line_too_long(line: str, bounds: Bounds) -> str | None:
    # len() in characters bounds the UTF-8 size from below; encode only non-ASCII lines that may be over.
    if len(line) * 4 <= bounds.max_line_bytes:
        return None
    size = len(line) if line.isascii() else len(line.encode("utf-8", "surrogatepass"))
    if size <= bounds.max_line_bytes:
        return None
    return (
        f"the line is {_size(size)}; the limit is {_size(bounds.max_line_bytes)} per line "
        "(DATASET_MAX_LINE_KB): split it into several rows"
    )


def _bounded(rows: Iterator[Row], bounds: Bounds) -> Iterator[Row]:
    """Each item's prompt size checked against the bound (text items, messages and CSV alike)."""
    for line, row in rows:
        if isinstance(row, DatasetItem):
            chars = _prompt_chars(row)
            if chars > bounds.max_prompt_chars:
                yield (
                    line,
                    (
                        f"the prompt is {chars:,} characters; the limit is {bounds.max_prompt_chars:,} "
                        "(DATASET_MAX_PROMPT_CHARS)"
                    ),
                )
                continue
        yield line, row


def _prompt_chars(item: DatasetItem) -> int:
    total = len(item.prompt or "")
    for m in item.messages or ():
        content = m.get("content")
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(p["text"]) for p in content if isinstance(p.get("text"), str))
    return total


def too_deep(value: Any, limit: int) -> bool:
    """True when ``value`` nests objects or arrays more than ``limit`` levels (walked without
    recursion, so a deep value cannot exhaust the stack here)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def depth_message(limit: int) -> str:
    return f"nested more than {limit} levels deep (the limit, DATASET_MAX_DEPTH)"


def _load(line: str, bounds: Bounds) -> Any:
    """One JSON value, or :class:`_Invalid` saying why not (bad JSON, too long, too deep)."""
    if too_long := line_too_long(line, bounds):
        return _Invalid(too_long)
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        return _Invalid(f"invalid JSON: {exc.msg} (column {exc.colno})")
    except RecursionError:  # deeper than the interpreter's stack allows: far past any bound
        return _Invalid(depth_message(bounds.max_depth))
    if too_deep(value, bounds.max_depth):
        return _Invalid(depth_message(bounds.max_depth))
    return value


def _collect(rows: Iterator[Row], *, max_items: int) -> tuple[list[DatasetItem], list[RowError]]:
    items: list[DatasetItem] = []
    errors: list[RowError] = []
    count = 0
    for line, row in rows:
        if isinstance(row, str):
            errors.append(RowError(line, row))
            if len(errors) >= MAX_ROW_ERRORS:
                errors.append(RowError(0, f"stopped after {MAX_ROW_ERRORS} errors"))
                return [], errors
            continue
        count += 1
        if count <= max_items:
            items.append(row)
    if count > max_items:
        errors.append(RowError(0, f"{count:,} items; the limit is {max_items:,}"))
    if not count and not errors:
        errors.append(RowError(0, "the file holds no prompts"))
    return items, errors


# --- JSON containers ---------------------------------------------------------------------------


def _jsonl_values(text: str, bounds: Bounds) -> Iterator[tuple[int, Any]]:
    # split("\n"), not splitlines(): JSON strings may hold U+2028 and friends unescaped.
    for n, line in enumerate(text.split("\n"), 1):
        if line.strip():
            yield n, _load(line, bounds)


def _json_values(text: str, bounds: Bounds) -> Iterator[tuple[int, Any]]:
    """Values of a JSON array with the line each starts on; a lone object is JSONL or a mistake."""
    start = _skip_ws(text, 0)
    if text[start] == "{":
        try:
            whole = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            yield from _jsonl_values(text, bounds)  # one object per line; per-line errors if not
            return
        raise _FileError(f"a single JSON {_kind(whole)}; expected an array of rows or one object per line", 1)
    if text[start] != "[":
        raise _FileError("expected a JSON array of rows or one JSON object per line", 1)
    for line, value in _array_elements(text, start, bounds):
        yield (
            line,
            _Invalid(depth_message(bounds.max_depth)) if too_deep(value, bounds.max_depth) else value,
        )


def _array_elements(text: str, start: int, bounds: Bounds) -> Iterator[tuple[int, Any]]:
    decoder = json.JSONDecoder()
    line, seen = 1, 0
    pos = _skip_ws(text, start + 1)
    if text.startswith("]", pos):
        pos += 1
    else:
        while True:
            try:
                value, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                at = f"line {exc.lineno}, column {exc.colno}"
                raise _FileError(f"invalid JSON: {exc.msg} ({at})", exc.lineno) from None
            except RecursionError:  # the element's end is unknown, so the rest cannot be read
                where = line + text.count("\n", seen, pos)
                raise _FileError(depth_message(bounds.max_depth), where) from None
            line, seen = line + text.count("\n", seen, pos), pos
            too_long = (
                line_too_long(text[pos:end], bounds) if end - pos > bounds.max_line_bytes // 4 else None
            )
            yield line, _Invalid(too_long.replace("the line", "the row")) if too_long else value
            pos = _skip_ws(text, end)
            if text.startswith(",", pos):
                pos = _skip_ws(text, pos + 1)
            elif text.startswith("]", pos):
                pos += 1
                break
            else:
                where = text.count("\n", 0, pos) + 1
                raise _FileError(f"invalid JSON: expected ',' or ']' (line {where})", where)
    if text[pos:].strip():
        where = text.count("\n", 0, pos) + 1
        raise _FileError(f"invalid JSON: extra data after the array (line {where})", where)


def _skip_ws(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    return match.end() if match else pos


@dataclass(slots=True, frozen=True)
class _Invalid:
    reason: str


def _kind(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _json_rows(
    values: Iterator[tuple[int, Any]], *, sharegpt: bool, multi_turn: bool, kinds: set[str]
) -> Iterator[Row]:
    """Items from JSON values; ``kinds`` collects which row shapes were seen (prompt, sharegpt)."""
    for line, value in values:
        if isinstance(value, _Invalid):
            yield line, value.reason
            continue
        try:
            if not isinstance(value, dict):
                raise _RowInvalid(f"expected a JSON object, got {_kind(value)}")
            is_sharegpt = sharegpt or "conversations" in value
            kinds.add("sharegpt" if is_sharegpt else "prompt")
            if is_sharegpt:
                yield line, _sharegpt_item(value, multi_turn=multi_turn)
            else:
                yield line, _prompt_item(value)
        except _RowInvalid as exc:
            yield line, str(exc)


def _prompt_item(row: dict[str, Any]) -> DatasetItem:
    known = {"prompt", "messages", "expected", "answer", "max_tokens", "metadata", "problem"}
    prompt = row.get("prompt", row.get("problem"))
    messages = row.get("messages")
    if prompt is None and messages is None:
        keys = ", ".join(list(row)[:8]) or "none"
        raise _RowInvalid(f'missing "prompt" (or "messages"); keys found: {keys}')
    if prompt is not None:
        prompt = _text_field(prompt, "prompt" if "prompt" in row else "problem")
    return DatasetItem(
        prompt=prompt,
        messages=None if messages is None else _messages(messages),
        expected=_expected(row.get("expected", row.get("answer"))),
        max_tokens=_max_tokens(row.get("max_tokens")),
        metadata={**{k: v for k, v in row.items() if k not in known}, **_metadata(row.get("metadata"))},
    )


def _text_field(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise _RowInvalid(f"{name} must be a string, got {_kind(value)}")
    if not value.strip():
        raise _RowInvalid(f"{name} is empty")
    return value


def _messages(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _RowInvalid(f"messages must be a list of {{role, content}} objects, got {_kind(value)}")
    if not value:
        raise _RowInvalid("messages is empty")
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise _RowInvalid(f"messages[{i}] must be an object, got {_kind(m)}")
        if m.get("role") not in ROLES:
            raise _RowInvalid(f"messages[{i}] has role {m.get('role')!r}; expected one of {', '.join(ROLES)}")
        if "content" not in m:
            raise _RowInvalid(f'messages[{i}] has no "content"')
        content = m["content"]
        parts_ok = isinstance(content, list) and all(isinstance(p, dict) and "type" in p for p in content)
        if not isinstance(content, str) and not parts_ok:
            got = _kind(content)
            raise _RowInvalid(f"messages[{i}].content must be a string or a list of parts, got {got}")
    return value


def _expected(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _RowInvalid(f"expected must be a string, got {_kind(value)}")
    return str(value)


def _max_tokens(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _RowInvalid(f"max_tokens must be a positive integer, got {value!r}")
    if value <= 0:
        raise _RowInvalid(f"max_tokens must be a positive integer, got {value}")
    return value


def _metadata(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _RowInvalid(f"metadata must be an object, got {_kind(value)}")
    return value


def _sharegpt_item(row: dict[str, Any], *, multi_turn: bool) -> DatasetItem:
    turns = row.get("conversations")
    if turns is None:
        raise _RowInvalid('missing "conversations"')
    if not isinstance(turns, list):
        raise _RowInvalid(f"conversations must be a list of {{from, value}} objects, got {_kind(turns)}")
    messages = [_sharegpt_turn(i, t) for i, t in enumerate(turns)]
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    if not users:
        raise _RowInvalid("the conversation has no human turn")
    cut = users[-1] if multi_turn else users[0]
    reply = messages[cut + 1]["content"] if cut + 1 < len(messages) else None
    meta = {k: v for k, v in row.items() if k not in ("conversations", "metadata")}
    meta.update(_metadata(row.get("metadata")))
    if multi_turn:
        return DatasetItem(prompt=None, messages=messages[: cut + 1], expected=reply, metadata=meta)
    return DatasetItem(prompt=messages[cut]["content"], expected=reply, metadata=meta)


def _sharegpt_turn(i: int, turn: Any) -> dict[str, Any]:
    if not isinstance(turn, dict):
        raise _RowInvalid(f"conversations[{i}] must be an object, got {_kind(turn)}")
    who = turn.get("from")
    if who not in SHAREGPT_ROLES:
        raise _RowInvalid(f"conversations[{i}] has from={who!r}; expected human or gpt")
    value = turn.get("value")
    if not isinstance(value, str):
        raise _RowInvalid(f"conversations[{i}].value must be a string, got {_kind(value)}")
    return {"role": SHAREGPT_ROLES[who], "content": value}


# --- CSV -----------------------------------------------------------------------------------------


def _csv_rows(text: str, *, delimiter: str, bounds: Bounds) -> Iterator[Row]:
    # Long prompts exceed csv's 128 KiB default field limit; the byte cap already bounds a field.
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = _csv_next(reader)
    except _RowInvalid as exc:
        raise _FileError(str(exc), 1) from None
    if header is None:
        raise _FileError("the file has no header row", 1)
    columns = [c.strip() for c in header]
    if "prompt" not in (c.lower() for c in columns):
        raise _FileError(f'no "prompt" column; the header has: {", ".join(header)[:200]}', 1)
    while True:
        line = reader.line_num + 1
        try:
            record = _csv_next(reader)
        except _RowInvalid as exc:
            yield line, str(exc)
            return  # the reader cannot resync after a quoting error
        if record is None:
            return
        if not any(f.strip() for f in record):
            continue
        if len(record) != len(columns):
            yield line, f"row has {len(record)} fields; the header has {len(columns)}"
            continue
        wide = sum(map(len, record)) * 4 > bounds.max_line_bytes  # join only a row that may be over
        if wide and (too_long := line_too_long(",".join(record), bounds)):
            yield line, too_long.replace("the line", "the row")
            continue
        try:
            yield line, _csv_item(dict(zip(columns, record, strict=True)))
        except _RowInvalid as exc:
            yield line, str(exc)


def _csv_next(reader: Any) -> list[str] | None:
    try:
        return list(next(reader))
    except StopIteration:
        return None
    except csv.Error as exc:
        raise _RowInvalid(f"malformed CSV: {exc} (check the quotes)") from None


def _csv_item(row: dict[str, str]) -> DatasetItem:
    """An item from one CSV record keyed by header name; known columns match case-insensitively."""
    names = ("prompt", "expected", "answer", "max_tokens")
    known = {k.lower(): v for k, v in row.items() if k.lower() in names}
    return DatasetItem(
        prompt=_text_field(known["prompt"], "prompt"),
        expected=known.get("expected") or known.get("answer") or None,
        max_tokens=_max_tokens(known.get("max_tokens", "").strip()),
        metadata={k: v for k, v in row.items() if k and k.lower() not in names},
    )
