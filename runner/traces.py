"""Public LLM traffic traces as replayable requests: arrival times, exact lengths, shared prefixes.

Formats (each a JSONL or CSV file; the columns are the publishers' own):

- ``mooncake`` (kvcache-ai/Mooncake): ``timestamp`` (ms), ``input_length``, ``output_length``,
  ``hash_ids`` (one id per 512-token block), optional ``messages`` / ``session_id``.
- ``bailian`` (Alibaba Bailian): ``chat_id``, ``parent_chat_id``, ``timestamp`` (s),
  ``input_length`` (history included), ``output_length``, ``turn``, ``hash_ids`` (16-token blocks).
- ``azure`` (Azure LLM inference): ``TIMESTAMP`` (a datetime, parsed tolerantly), ``ContextTokens``,
  ``GeneratedTokens``.
- ``burstgpt`` (BurstGPT): ``Timestamp`` (s), ``Request tokens``, ``Response tokens``, ``Log Type``;
  zero response tokens marks a request that failed.

Prompts are synthetic text of exactly the trace's input length in the run's tokenizer
(:func:`runner.datasets.synthetic.block_prompts`); requests sharing leading hash ids share that
prefix text. Output lengths become ``max_tokens``. A failed request is still sent (it arrived and
was prefilled) with ``max_tokens`` 1.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runner.datasets.parse import Bounds, depth_message, line_too_long, too_deep
from runner.spec import Prompt
from runner.tokenizers import Tokenizer

TRACE_FORMATS: tuple[str, ...] = ("mooncake", "bailian", "azure", "burstgpt")
BLOCK_TOKENS = {"mooncake": 512, "bailian": 16}


class TraceError(ValueError):
    """A trace file that cannot be read; the message names the line and the problem."""


@dataclass(slots=True)
class TraceRequest:
    t_s: float  # seconds, the trace's own clock (normalised to start at 0 by read_trace)
    input_tokens: int
    output_tokens: int
    blocks: list[int]
    failed: bool = False
    session: str | None = None
    messages: list[dict[str, Any]] | None = None


def read_rows(data: bytes, bounds: Bounds | None = None) -> list[dict[str, Any]]:
    """JSON lines, or CSV with a header row; each row a dict. A JSON line longer or nested deeper
    than ``bounds`` (runner.datasets.Bounds) is refused with its line number."""
    bounds = bounds or Bounds()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TraceError(f"not UTF-8 text (byte {exc.start})") from None
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if first.lstrip().startswith("{"):
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            if too_long := line_too_long(line, bounds):
                raise TraceError(f"line {n}: {too_long}")
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TraceError(f"line {n}: not JSON ({exc.msg})") from None
            except RecursionError:  # far past any bound
                raise TraceError(f"line {n}: {depth_message(bounds.max_depth)}") from None
            if too_deep(row, bounds.max_depth):
                raise TraceError(f"line {n}: {depth_message(bounds.max_depth)}")
            if not isinstance(row, dict):
                raise TraceError(f"line {n}: expected a JSON object")
            rows.append(row)
        return rows
    try:
        rows = [dict(r) for r in csv.DictReader(io.StringIO(text))]
    except csv.Error as exc:
        raise TraceError(f"not CSV ({exc})") from None
    if not rows and text.strip():
        raise TraceError("line 1: neither a JSON object (JSON lines) nor a CSV header followed by rows")
    return rows


def detect_trace(row: Mapping[str, Any]) -> str | None:
    keys = {k.strip() for k in row}
    if {"chat_id", "input_length"} <= keys:
        return "bailian"
    if {"input_length", "output_length"} <= keys:
        return "mooncake"
    if {"TIMESTAMP", "ContextTokens"} <= keys:
        return "azure"
    if {"Timestamp", "Request tokens"} <= keys:
        return "burstgpt"
    return None


def read_trace(rows: Sequence[Mapping[str, Any]], fmt: str) -> list[TraceRequest]:
    if fmt not in TRACE_FORMATS:
        raise TraceError(f"unknown trace format {fmt!r}; choose one of {', '.join(TRACE_FORMATS)}")
    out = []
    for n, row in enumerate(rows, 1):
        try:
            out.append(_ROW[fmt]({k.strip(): v for k, v in row.items()}))
        except (KeyError, ValueError, TypeError) as exc:
            raise TraceError(f"row {n}: not a {fmt} row ({_why(exc)})") from None
    if out:
        t0 = min(r.t_s for r in out)
        for r in out:
            r.t_s -= t0
    return out


def _why(exc: Exception) -> str:
    return f"missing column {exc}" if isinstance(exc, KeyError) else str(exc)


def _int(value: Any, name: str) -> int:
    number = float(value)
    if number < 0 or number != int(number):
        raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    return int(number)


def _ids(value: Any) -> list[int]:
    if isinstance(value, str):  # a CSV cell: "[1, 2, 3]" or "1 2 3"
        value = [int(x) for x in re.findall(r"-?\d+", value)]
    if not isinstance(value, list):
        raise ValueError(f"hash_ids must be a list, got {value!r}")
    return [int(x) for x in value]


def _mooncake(row: Mapping[str, Any]) -> TraceRequest:
    messages = row.get("messages")
    return TraceRequest(
        t_s=float(row["timestamp"]) / 1000.0,
        input_tokens=_int(row["input_length"], "input_length"),
        output_tokens=_int(row["output_length"], "output_length"),
        blocks=_ids(row.get("hash_ids") or []),
        session=str(row["session_id"]) if row.get("session_id") is not None else None,
        messages=messages if isinstance(messages, list) and messages else None,
    )


def _bailian(row: Mapping[str, Any]) -> TraceRequest:
    parent = row.get("parent_chat_id")
    return TraceRequest(
        t_s=float(row["timestamp"]),
        input_tokens=_int(row["input_length"], "input_length"),
        output_tokens=_int(row["output_length"], "output_length"),
        blocks=_ids(row.get("hash_ids") or []),
        # a conversation is its first chat's id: follow-ups name their parent
        session=str(parent if parent not in (None, "", -1, "-1") else row["chat_id"]),
    )


def _azure(row: Mapping[str, Any]) -> TraceRequest:
    return TraceRequest(
        t_s=parse_time(row["TIMESTAMP"]),
        input_tokens=_int(row["ContextTokens"], "ContextTokens"),
        output_tokens=_int(row["GeneratedTokens"], "GeneratedTokens"),
        blocks=[],
    )


def _burstgpt(row: Mapping[str, Any]) -> TraceRequest:
    out = _int(row["Response tokens"], "Response tokens")
    return TraceRequest(
        t_s=float(row["Timestamp"]),
        input_tokens=_int(row["Request tokens"], "Request tokens"),
        output_tokens=out,
        blocks=[],
        failed=out == 0,
        session=str(row.get("Log Type") or "") or None,
    )


_ROW = {"mooncake": _mooncake, "bailian": _bailian, "azure": _azure, "burstgpt": _burstgpt}

_FRACTION = re.compile(r"(\d{2}:\d{2}:\d{2})[.,](\d+)")


def parse_time(value: Any) -> float:
    """Seconds from a number (epoch s, or ms when it is that large) or a datetime string in most
    shapes: ``2023-11-16 18:15:46.6805900`` (7 digits), ``…T…Z``, ``+00:00``; naive = UTC."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) / (1000.0 if value > 1e11 else 1.0)
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return parse_time(number)
    text = _FRACTION.sub(lambda m: f"{m.group(1)}.{m.group(2)[:6].ljust(6, '0')}", text)
    text = text.replace("Z", "+00:00").replace(" UTC", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"unreadable timestamp {value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def trace_prompts(
    requests: Sequence[TraceRequest], fmt: str, tokenizer: Tokenizer, *, seed: int = 0
) -> list[Prompt]:
    """One prompt per request: the trace's own messages when it has them, else synthetic text of the
    exact input length whose shared blocks are shared text.

    Requests that share a conversation (``session``, in the formats that link turns) become turns of
    one conversation (``Prompt.session``): the engine sends each after the previous answer, with the
    model's own earlier answers as history. The trace's input length holds that history, so a later
    turn's own text is only what is new: its input length less the previous turn's input and output.
    """
    from runner.datasets.synthetic import block_prompts

    before = _previous_turns(requests, fmt)
    in_conversation = set(before) | set(before.values())
    shape: list[tuple[list[int], int]] = []
    for i, r in enumerate(requests):
        if i in before:  # a follow-up turn: only the new tokens, as fresh text
            prev = requests[before[i]]
            shape.append(([], max(1, r.input_tokens - prev.input_tokens - prev.output_tokens)))
        else:
            shape.append((r.blocks, r.input_tokens))
    synthetic = [k for k, r in enumerate(requests) if r.messages is None and r.input_tokens > 0]
    texts = iter(
        block_prompts(
            tokenizer,
            [shape[k] for k in synthetic],
            block_tokens=BLOCK_TOKENS.get(fmt, 512),
            seed=seed,
        )
    )
    prompts = []
    for i, r in enumerate(requests):
        pid = f"{i}-failed" if r.failed else str(i)
        if r.messages is not None:
            prompt = Prompt(id=pid, messages=r.messages, max_tokens=max(r.output_tokens, 1))
        elif r.input_tokens > 0:
            prompt = Prompt(
                id=pid, text=next(texts), input_tokens=shape[i][1], max_tokens=max(r.output_tokens, 1)
            )
        else:
            prompt = Prompt(id=pid, text=".", max_tokens=max(r.output_tokens, 1))
        prompt.session = r.session if i in in_conversation else None
        prompts.append(prompt)
    return prompts


SESSION_FORMATS = ("mooncake", "bailian")  # their session ids link the turns of one conversation


def _previous_turns(requests: Sequence[TraceRequest], fmt: str) -> dict[int, int]:
    """Index of each follow-up turn → index of the turn before it in its conversation."""
    if fmt not in SESSION_FORMATS:
        return {}
    last: dict[str, int] = {}
    before: dict[int, int] = {}
    for k in sorted(range(len(requests)), key=lambda k: requests[k].t_s):
        session = requests[k].session
        if not session:
            continue
        if session in last:
            before[k] = last[session]
        last[session] = k
    return before
