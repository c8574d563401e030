"""What ``--replay FILE`` sends, and when: captures, access logs, llmperf logs and public traces.

Formats (``--replay-format``; without it the first line decides and the CLI prints the guess):

- ``capture``: the mirror's ``--capture`` JSONL. Each request keeps its own parameters (model,
  max_tokens, temperature, tools…) and its recorded production timings and answer, which the
  replayed ones are compared with. Redacted prompts (``--capture-prompts hash|drop``) are replaced by
  synthetic text of the recorded input length.
- ``access-log``: JSONL of OpenAI request bodies with a timestamp (``timestamp``/``ts``/``time``/
  ``created``: epoch s or ms, or a datetime), the body at the top level or under ``body``/``request``.
- ``llmperf``: ``{"t_s": offset, "prompt": index-or-text}`` lines (indices point into ``--dataset``).
- ``mooncake``, ``bailian``, ``azure``, ``burstgpt``: public traces (:mod:`runner.traces`).

Arrival offsets are kept as recorded (``--speed`` scales them in the profile); requests arriving
at the same instant keep their file order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import traces
from runner.datasets.parse import Bounds
from runner.spec import Prompt
from runner.tokenizers import Tokenizer

REPLAY_FORMATS: tuple[str, ...] = ("capture", "access-log", "llmperf", *traces.TRACE_FORMATS)
_TIME_KEYS = ("t_s", "timestamp", "ts", "time", "created", "arrival_time", "@timestamp")
_BODY_KEYS = ("body", "request", "request_body")
_WS_KEYS = ("transport", "frames", "frames_sent", "frames_truncated")
_OWNED = ("messages", "prompt", "stream", "stream_options", "max_tokens", "max_completion_tokens")


class ReplayError(ValueError):
    """A replay file that cannot be sent; the message names every bad line (up to 20)."""


@dataclass(slots=True)
class Replay:
    format: str
    detected: bool
    prompts: list[Prompt]  # empty for an llmperf log of indices into --dataset
    entries: list[dict[str, float]]  # the profile's {"t_s", "prompt"} entries
    recorded: dict[str, dict[str, Any]] = field(default_factory=dict)  # prompt id -> production row
    notes: list[str] = field(default_factory=list)
    websocket: int = 0  # captured WebSocket sessions among the prompts (sent again by generic-ws)


def detect_format(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        raise ReplayError("the replay file holds no requests")
    row = rows[0]
    trace = traces.detect_trace(row)
    if trace is not None:
        return trace
    if "production" in row or str(row.get("format", "")).startswith("llmperf-capture"):
        return "capture"
    wrapped = any(isinstance(row.get(k), dict) for k in _BODY_KEYS)
    if "t_s" in row and ("prompt" in row or "messages" in row) and not wrapped and "model" not in row:
        return "llmperf"  # llmperf's own {t_s, prompt} log (an access log names its model)
    if _body_of(row) is not None and any(k in row for k in _TIME_KEYS):
        return "access-log"
    if _text_body(row):
        raise ReplayError(f"line 1: {_text_body(row)}")
    raise ReplayError(
        f"cannot tell the replay format from the first line (keys: {', '.join(sorted(row)) or 'none'}); "
        f"pass --replay-format ({', '.join(REPLAY_FORMATS)})"
    )


def load_replay(
    path: str | Path,
    fmt: str | None = None,
    *,
    tokenizer: Tokenizer | None = None,
    seed: int = 0,
    limit: int = 0,
) -> Replay:
    return parse_replay(Path(path).read_bytes(), fmt, tokenizer=tokenizer, seed=seed, limit=limit)


def parse_replay(
    data: bytes,
    fmt: str | None = None,
    *,
    tokenizer: Tokenizer | None = None,
    seed: int = 0,
    limit: int = 0,
    privacy: str = "keep",
    bounds: Bounds | None = None,
) -> Replay:
    """:func:`load_replay` of a file's bytes (an upload). Credential fields (``api_key``…) never
    survive a request body; ``privacy`` ``hash`` or ``drop`` also redacts every prompt text as the
    mirror's capture does, and the replay then sends synthetic text of the recorded length."""
    try:
        rows = traces.read_rows(data, bounds)
    except traces.TraceError as exc:
        raise ReplayError(str(exc)) from None
    rows = rows[:limit] if limit > 0 else rows
    if not rows:
        raise ReplayError("the replay file holds no requests")
    detected = fmt is None
    fmt = fmt or detect_format(rows)
    if fmt not in REPLAY_FORMATS:
        raise ReplayError(f"unknown replay format {fmt!r}; choose one of {', '.join(REPLAY_FORMATS)}")
    if fmt in traces.TRACE_FORMATS:
        return _from_trace(rows, fmt, detected, tokenizer, seed)
    if fmt == "llmperf":
        return _from_llmperf(rows, detected)
    return _from_requests([_private(r, privacy) for r in rows], fmt, detected, tokenizer, seed)


def _private(row: dict[str, Any], privacy: str) -> dict[str, Any]:
    from runner.mirror.capture import redact_body

    body = _body_of(row)
    if body is None:
        return row
    mode: Any = privacy if privacy in ("hash", "drop") else "keep"
    kept = {k: row[k] for k in ("id", "ts", "production", "redacted", *_WS_KEYS, *_TIME_KEYS) if k in row}
    out = {**kept, "body": redact_body(body, mode)}
    if row.get("transport") == "websocket":  # a provider's own frames: any string may be a prompt
        from runner.mirror.capture import redact_captured_frame, redact_frame

        out["body"] = redact_frame(body, mode)
        if isinstance(row.get("frames"), list):
            out["frames"] = [redact_captured_frame(f, mode) for f in row["frames"]]
    if mode != "keep":
        out["redacted"] = mode
    return out


def _tokenizer(tokenizer: Tokenizer | None) -> Tokenizer:
    if tokenizer is not None:
        return tokenizer
    from runner.tokenizers import load_tokenizer

    return load_tokenizer("")


def _from_trace(
    rows: list[dict[str, Any]], fmt: str, detected: bool, tok: Tokenizer | None, seed: int
) -> Replay:
    try:
        reqs = traces.read_trace(rows, fmt)
    except traces.TraceError as exc:
        raise ReplayError(str(exc)) from None
    prompts = traces.trace_prompts(reqs, fmt, _tokenizer(tok), seed=seed)
    entries = [{"t_s": r.t_s, "prompt": float(i)} for i, r in enumerate(reqs)]
    notes = [f"{len(reqs)} requests over {max((r.t_s for r in reqs), default=0):.1f} s of trace time"]
    failed = sum(1 for r in reqs if r.failed)
    if failed:
        notes.append(f"{failed} failed in the trace (no output); sent with max_tokens 1")
    return Replay(fmt, detected, prompts, entries, notes=notes)


def _from_llmperf(rows: list[dict[str, Any]], detected: bool) -> Replay:
    entries, prompts, problems = [], [], []
    texts = all(isinstance(r.get("prompt"), str) or r.get("messages") for r in rows)
    for n, r in enumerate(rows, 1):
        try:
            index = float(r["prompt"]) if isinstance(r.get("prompt"), int) and not texts else float(n - 1)
            entries.append({"t_s": float(r["t_s"]), "prompt": index})
        except (KeyError, TypeError, ValueError):
            problems.append(f"line {n}: needs a numeric t_s and a prompt")
            continue
        if texts:
            prompts.append(
                Prompt(
                    id=str(r.get("id", n - 1)),
                    text=r.get("prompt") or "",
                    messages=r.get("messages"),
                    max_tokens=r.get("max_tokens"),
                )
            )
    _raise(problems)
    return Replay("llmperf", detected, prompts, entries)


def _raise(problems: list[str]) -> None:
    if problems:
        shown = "\n".join(f"  {p}" for p in problems[:20])
        raise ReplayError(f"{len(problems)} problem(s), nothing sent:\n{shown}")


def _body_of(row: Mapping[str, Any]) -> dict[str, Any] | None:
    for key in _BODY_KEYS:
        if isinstance(row.get(key), dict):
            return dict(row[key])
    if "messages" in row or "prompt" in row:
        return {k: v for k, v in row.items() if k not in _TIME_KEYS}
    return None


def _text_body(row: Mapping[str, Any]) -> str:
    """Why a body given as text cannot be replayed ("" when no body is text)."""
    key = next((k for k in _BODY_KEYS if isinstance(row.get(k), str)), None)
    return f"the request body ({key}) is text, not a JSON object with messages or prompt" if key else ""


def _arrival(row: Mapping[str, Any], fmt: str) -> float:
    # a capture file may hold several mirror sessions (it is appended to): their epoch stamps
    # order them; t_s restarts at 0 with each session
    keys = ("ts", *_TIME_KEYS) if fmt == "capture" else _TIME_KEYS
    for key in keys:
        if row.get(key) is not None:
            return float(row[key]) if key == "t_s" else traces.parse_time(row[key])
    raise ValueError(f"no timestamp (one of {', '.join(_TIME_KEYS)})")


def _from_requests(
    rows: list[dict[str, Any]], fmt: str, detected: bool, tok: Tokenizer | None, seed: int
) -> Replay:
    """Captures and access logs: one request body per line, with its arrival time."""
    problems: list[str] = []
    kept: list[tuple[float, dict[str, Any], dict[str, Any]]] = []
    skipped = 0
    ws_skipped: dict[str, int] = {}
    for n, row in enumerate(rows, 1):
        if fmt == "capture" and row.get("transport") == "websocket":
            why = _ws_unreplayable(row)
            if why:
                ws_skipped[why] = ws_skipped.get(why, 0) + 1
                continue
        body = _body_of(row)
        if body is None:
            if fmt == "capture" and "body_text" in row:
                skipped += 1  # the caller sent a body that was not JSON: nothing to replay
                continue
            problems.append(
                f"line {n}: {_text_body(row) or 'no request body (a JSON object with messages or prompt)'}"
            )
            continue
        try:
            t = _arrival(row, fmt)
        except ValueError as exc:
            problems.append(f"line {n}: {exc}")
            continue
        if not isinstance(body.get("messages"), list) and not isinstance(body.get("prompt"), str | list):
            problems.append(f"line {n}: the body has neither messages nor prompt")
            continue
        kept.append((t, body, row))
    _raise(problems)
    ws_notes = [f"{n} {why}" for why, n in sorted(ws_skipped.items())]
    if not kept:
        skipped_ws = f" ({sum(ws_skipped.values())} WebSocket sessions skipped: {', '.join(ws_notes)})"
        raise ReplayError("the replay file holds no request to send" + (skipped_ws if ws_skipped else ""))
    t0 = min(t for t, _, _ in kept)
    replay = Replay(fmt, detected, [], [])
    redacted = []
    for i, (t, body, row) in enumerate(kept):
        prompt = _prompt(str(i), body)
        if row.get("redacted"):
            redacted.append((prompt, _recorded_tokens(row, body)))
        replay.prompts.append(prompt)
        replay.entries.append({"t_s": t - t0, "prompt": float(i)})
        replay.websocket += row.get("transport") == "websocket"
        if isinstance(row.get("production"), dict):
            recorded = dict(row["production"])
            if row.get("redacted"):
                recorded.pop("answer_text", None)  # a hash is no answer to compare with
            replay.recorded[prompt.id] = recorded
    if redacted:
        _synthesize(redacted, _tokenizer(tok), seed)
        replay.notes.append(
            f"{len(redacted)} redacted prompts replaced by synthetic text of their recorded length"
        )
    if skipped:
        replay.notes.append(f"{skipped} captured requests had no JSON body and are not replayed")
    if replay.websocket:
        replay.notes.append(
            f"{replay.websocket} WebSocket sessions sent as their ask (over WebSocket with generic-ws)"
        )
    if ws_skipped:
        replay.notes.append(f"{sum(ws_skipped.values())} WebSocket sessions skipped: {', '.join(ws_notes)}")
    return replay


def _ws_unreplayable(row: Mapping[str, Any]) -> str:
    """Why a captured WebSocket session cannot be sent again ("" when it can): a request is one ask
    and its answer, so only a session whose caller sent its ask and nothing after can be."""
    sent = row.get("frames_sent")
    if not sent:
        return "never asked"
    if sent != 1 or row.get("frames_truncated"):
        return "sent more than an ask"
    body = row.get("body")
    if not isinstance(body, dict) or not (
        isinstance(body.get("messages"), list) or isinstance(body.get("prompt"), str | list)
    ):
        return "asked without prompt or messages"
    return ""


def _prompt(pid: str, body: dict[str, Any]) -> Prompt:
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    params = {k: v for k, v in body.items() if k not in _OWNED}
    if "max_completion_tokens" in body and "max_tokens" not in body:
        params["max_completion_tokens"] = body["max_completion_tokens"]
    messages = body.get("messages")
    prompt = body.get("prompt")
    return Prompt(
        id=pid,
        text=prompt
        if isinstance(prompt, str)
        else " ".join(map(str, prompt))
        if isinstance(prompt, list)
        else "",
        messages=messages if isinstance(messages, list) else None,
        max_tokens=int(max_tokens)
        if isinstance(max_tokens, int) and not isinstance(max_tokens, bool)
        else None,
        params=params or None,
    )


def _recorded_tokens(row: Mapping[str, Any], body: Mapping[str, Any]) -> int:
    prod = row.get("production")
    if isinstance(prod, dict) and isinstance(prod.get("input_tokens"), int) and prod["input_tokens"] > 0:
        return int(prod["input_tokens"])
    return 128  # nothing recorded: a typical short prompt


def _synthesize(redacted: list[tuple[Prompt, int]], tok: Tokenizer, seed: int) -> None:
    from runner.datasets.synthetic import block_prompts

    texts = block_prompts(tok, [([], n) for _, n in redacted], block_tokens=512, seed=seed)
    for (prompt, n), text in zip(redacted, texts, strict=True):
        prompt.text, prompt.messages, prompt.input_tokens = text, None, n


def compare_with_recorded(replay: Replay, records: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The replayed requests against the production ones the capture recorded (replayed − recorded)."""
    if not replay.recorded:
        return None
    from runner.pairing import compare_pairs

    pairs = [(replay.recorded[r["prompt_id"]], r) for r in records if r.get("prompt_id") in replay.recorded]
    return compare_pairs(pairs)


LAG_WARN_MS = 50.0  # a replay whose sends run later than this (p99) did not keep the arrival pattern


def replay_report(
    replay: Replay, summary: Mapping[str, Any], records: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """How faithfully the arrivals were kept (schedule lag), and the answers and latencies against the
    recorded production ones when the file was a capture."""
    lag = summary.get("schedule_lag_ms") or {}
    p99 = lag.get("p99")
    return {
        "format": replay.format,
        "detected": replay.detected,
        "scheduled": len(replay.entries),
        "sent": len(records),
        "schedule_lag_ms": lag,
        "late_sends": (summary.get("engine") or {}).get("late_sends"),
        "kept_up": p99 is None or p99 <= LAG_WARN_MS,
        "notes": replay.notes,
        "versus_recorded": compare_with_recorded(replay, records),
    }


def _f(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"


def print_replay(report: Mapping[str, Any]) -> None:
    lag = report["schedule_lag_ms"]
    print(
        f"replay ({report['format']}): {report['sent']} of {report['scheduled']} sent; "
        f"schedule lag p50 {_f(lag.get('p50'))} ms p99 {_f(lag.get('p99'))} ms max {_f(lag.get('max'))} ms"
    )
    if not report["kept_up"]:
        print(
            f"replay: DID NOT KEEP UP — sends ran up to {_f(lag.get('max'))} ms behind the recorded arrivals"
        )
    versus = report["versus_recorded"]
    if versus:
        print(
            f"versus recorded production: {versus['pairs']} pairs, success agreement "
            f"{_f((versus['success']['agreement'] or 0) * 100)}%, TTFT diff p50 {_f(versus['ttft_ms_diff']['p50'])} ms, "
            f"answer ROUGE-L mean {versus['answer_rouge_l']['mean'] or 0:.2f}"
        )
