"""The run's summary from columns: the same numbers as :func:`runner.summary.summarize`, computed with
numpy over one array per field instead of one Python object per record, so a run of a million requests
is summarised in seconds.

A store keeps each record's gaps and content chunks beside it in a compact float64 blob
(:func:`pack_series`, written once with the record); :func:`columns_from` turns a chunk of records
(their fields without packets and gaps, plus that blob) into :class:`Columns`, and
:func:`summarize_columns` is ``summarize`` over them. ``tests/runner/test_columns.py`` checks that both
give the same summary on the same records.

Memory: the per-record fields are columns in memory, but the gaps and chunks (a hundred and more values a
record) are not held together: :class:`SeriesStore` keeps them per chunk of records, in memory or spilled
to an unlinked temporary file (``columns_from(..., spill=file)``), and every distribution over them is
computed exactly by :mod:`runner.exact` in two passes over the chunks, one chunk loaded at a time.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from runner.accuracy import accuracy_block
from runner.analysis import LENGTH_REASONS
from runner.exact import Exact
from runner.metrics import CONVENTIONS
from runner.quality import MONITORS, reasoning_leak
from runner.records import Outcome, RequestRecord
from runner.spec import Prompt, Slo
from runner.summary import (
    LATENCY_KEYS,
    SCHEMA_VERSION,
    _prompts_by_id,
    bucket_bounds,
    bucket_label,
    distribution,
)

F64 = npt.NDArray[np.float64]
BOOL = npt.NDArray[np.bool_]

# float64 columns (NaN where the record has None); the second item is the record's default
FLOATS: tuple[tuple[str, float | None], ...] = (
    ("ttft_ms", None),
    ("first_chunk_ms", None),
    ("ttft_answer_ms", None),
    ("thinking_ms", None),
    ("e2e_ms", None),
    ("tpot_ms", None),
    ("tokens_per_s", None),
    ("schedule_lag_ms", 0.0),
    ("scheduled_s", 0.0),
    ("input_tokens", None),
    ("output_tokens", None),
    ("thinking_tokens", None),
    ("usage_input_tokens", None),
    ("usage_output_tokens", None),
    ("client_input_tokens", None),
    ("client_output_tokens", None),
    ("cached_input_tokens", None),
    ("content_chunks", 0),
    ("level", None),
    ("variant", 0),
    ("shard", 0),
)
SOURCES = ("none", "server", "estimated_by_chars")  # where a record's per-chunk token counts came from
_CONTENT = frozenset({"thinking", "answer", "tool_call"})


def chunk_series(record: Mapping[str, Any]) -> tuple[list[float], list[float], str]:
    """(arrival ms, tokens) of each content chunk and their source: ``runner.token_stats.chunk_tokens``
    of one record, from its packet rows."""
    rows = [row for row in record.get("packets") or [] if row[0] in _CONTENT]
    if not rows:
        return [], [], "none"
    if all(row[2] > 0 for row in rows):
        return [float(row[1]) for row in rows], [float(row[2]) for row in rows], "server"
    chars = sum(row[3] for row in rows)
    out = record.get("output_tokens") or 0
    if not out or not chars:
        return [], [], "none"
    return [float(row[1]) for row in rows], [out * row[3] / chars for row in rows], "estimated_by_chars"


def pack_series(record: Mapping[str, Any]) -> bytes:
    """One record's gaps and content chunks as float64 bytes: [gaps, chunks, source, gaps…, chunk
    arrival ms…, chunk tokens…]."""
    itl = [float(x) for x in record.get("itl_ms") or []]
    t, n, source = chunk_series(record)
    head = [float(len(itl)), float(len(t)), float(SOURCES.index(source))]
    return np.array(head + itl + t + n, dtype=np.float64).tobytes()


def unpack_series(blob: bytes) -> tuple[F64, F64, F64, int]:
    a = np.frombuffer(blob, dtype=np.float64)
    n_itl, n_chunks, source = int(a[0]), int(a[1]), int(a[2])
    itl = a[3 : 3 + n_itl]
    t = a[3 + n_itl : 3 + n_itl + n_chunks]
    return itl, t, a[3 + n_itl + n_chunks : 3 + n_itl + 2 * n_chunks], source


@dataclass(frozen=True)
class _Part:
    """The gaps and content chunks of one chunk of consecutive records: in memory, or at ``offset`` in
    a spill file (gaps, chunk arrival ms, chunk tokens, float64, back to back)."""

    records: int
    n_itl: int
    n_chunks: int
    arrays: tuple[F64, F64, F64] | None = None
    file: IO[bytes] | None = None
    offset: int = 0

    def load(self) -> tuple[F64, F64, F64]:
        if self.arrays is not None:
            return self.arrays
        assert self.file is not None
        size = 8 * (self.n_itl + 2 * self.n_chunks)
        raw = bytearray()
        while len(raw) < size:
            got = os.pread(self.file.fileno(), size - len(raw), self.offset + len(raw))
            if not got:
                raise OSError("series spill file ended early")
            raw += got
        a = np.frombuffer(raw, dtype=np.float64)
        i, n = self.n_itl, self.n_chunks
        return a[:i], a[i : i + n], a[i + n :]


@dataclass(frozen=True)
class SeriesStore:
    """Every record's gaps and content chunks, a chunk of records at a time (never all loaded)."""

    parts: tuple[_Part, ...] = ()
    usable: bool = True

    def __iter__(self) -> Iterator[tuple[int, int, F64, F64, F64]]:
        """(first record, end record, gaps, chunk arrival ms, chunk tokens) of each part, in order."""
        if not self.usable:
            raise RuntimeError("these columns are a subset without their series")
        start = 0
        for part in self.parts:
            itl, t, n = part.load()
            yield start, start + part.records, itl, t, n
            start += part.records


@dataclass
class Columns:
    """Every record of a run, one array per field, in the records' order; their gaps and chunks in
    :class:`SeriesStore` (per record: how many of each)."""

    floats: dict[str, F64]
    outcome: npt.NDArray[Any]  # str objects
    request_id: npt.NDArray[Any]
    prompt_id: npt.NDArray[Any]
    correct: F64  # 1, 0, NaN (not graded)
    length_stopped: BOOL
    tokens_estimated: BOOL
    finish_length: BOOL  # finish reason is a length stop
    has_answer: BOOL
    leak: BOOL  # reasoning in the answer (runner.quality.reasoning_leak)
    itl_len: npt.NDArray[np.int64]
    chunk_len: npt.NDArray[np.int64]
    source: npt.NDArray[np.int8]
    series: SeriesStore
    extra: dict[Any, Any] = field(default_factory=dict)  # memoised blocks (see _pooled_itl)

    @property
    def size(self) -> int:
        return int(self.outcome.size)

    def f(self, key: str) -> F64:
        return self.floats[key]

    @classmethod
    def concat(cls, parts: Sequence[Columns]) -> Columns:
        if not parts:
            return columns_from([], [])
        if len(parts) == 1:
            return parts[0]

        def cat(name: str) -> Any:
            return np.concatenate([getattr(p, name) for p in parts])

        names = [
            "outcome",
            "request_id",
            "prompt_id",
            "correct",
            "length_stopped",
            "tokens_estimated",
            "finish_length",
            "has_answer",
            "leak",
            "itl_len",
            "chunk_len",
            "source",
        ]
        return cls(
            floats={k: np.concatenate([p.floats[k] for p in parts]) for k, _ in FLOATS},
            series=SeriesStore(tuple(x for p in parts for x in p.series.parts)),
            **{name: cat(name) for name in names},
        )


def columns_from(
    records: Sequence[Mapping[str, Any]],
    series: Sequence[bytes | None] | None = None,
    *,
    spill: IO[bytes] | None = None,
) -> Columns:
    """Columns of ``records`` (dicts; packets and gaps may be left out when ``series`` gives each
    record's :func:`pack_series` blob; a None blob is computed from the record itself). With ``spill``
    (a binary file opened unbuffered), their gaps and chunks are appended to it rather than kept."""
    blobs = [
        blob if blob is not None else pack_series(r)
        for r, blob in zip(records, series if series is not None else [None] * len(records), strict=True)
    ]
    unpacked = [unpack_series(bytes(b)) for b in blobs]

    def obj(key: str, default: Any) -> npt.NDArray[Any]:
        out = np.empty(len(records), dtype=object)
        out[:] = [r.get(key, default) for r in records]
        return out

    def flag(values: Iterable[Any]) -> BOOL:
        return np.fromiter((bool(v) for v in values), dtype=np.bool_, count=len(records))

    def answer(r: Mapping[str, Any]) -> bool:
        text = r.get("answer_text") or ""
        return bool(text.strip()) if text else (r.get("answer_chars") or 0) > 0

    def cat(i: int) -> F64:
        return np.concatenate([u[i] for u in unpacked]) if unpacked else np.empty(0, dtype=np.float64)

    itl, chunk_t, chunk_n = cat(0), cat(1), cat(2)
    part = _Part(records=len(records), n_itl=int(itl.size), n_chunks=int(chunk_t.size))
    if spill is None:
        part = _Part(part.records, part.n_itl, part.n_chunks, arrays=(itl, chunk_t, chunk_n))
    else:
        offset = spill.seek(0, os.SEEK_END)
        data = memoryview(np.concatenate((itl, chunk_t, chunk_n)).tobytes())
        while data:  # an unbuffered file may take part of a write
            data = data[spill.write(data) or 0 :]
        part = _Part(part.records, part.n_itl, part.n_chunks, file=spill, offset=offset)
    del itl, chunk_t, chunk_n

    return Columns(
        floats={
            key: np.array(
                [r.get(key, default) for r in records]
                if default is not None
                else [r.get(key) for r in records],
                dtype=np.float64,
            ).reshape(-1)
            for key, default in FLOATS
        },
        outcome=obj("outcome", Outcome.SUCCESS.value),
        request_id=obj("request_id", ""),
        prompt_id=obj("prompt_id", ""),
        correct=np.array([r.get("correct") for r in records], dtype=np.float64).reshape(-1),
        length_stopped=flag(r.get("length_stopped") for r in records),
        tokens_estimated=flag(r.get("tokens_estimated") for r in records),
        finish_length=flag(r.get("finish_reason") in LENGTH_REASONS for r in records),
        has_answer=flag(answer(r) for r in records),
        leak=flag(reasoning_leak(r.get("answer_text") or "") for r in records),
        itl_len=np.array([u[0].size for u in unpacked], dtype=np.int64),
        chunk_len=np.array([u[1].size for u in unpacked], dtype=np.int64),
        source=np.array([u[3] for u in unpacked], dtype=np.int8),
        series=SeriesStore((part,)),
    )


# --- the summary ------------------------------------------------------------------------------------


def _present(a: F64) -> BOOL:
    return ~np.isnan(a)


def _truthy(a: F64) -> BOOL:
    """``bool(value)`` of an optional number: present and not zero."""
    out: BOOL = ~np.isnan(a) & (a != 0)
    return out


def _sum_int(a: F64, mask: BOOL) -> int:
    """``sum(value or 0 for the masked records)`` of integer counts (exact below 2**53)."""
    v = a[mask]
    return int(v[~np.isnan(v)].sum())


def _dist(a: F64, mask: BOOL) -> dict[str, float | int | None]:
    v = a[mask]
    return distribution(v[~np.isnan(v)])


def _select(values: F64, lengths: npt.NDArray[np.int64], mask: BOOL) -> F64:
    """The masked records' elements of ``values`` (concatenated per record), in order; no copy when
    the records left out have none (failed requests carry no gaps)."""
    if not lengths[~mask].any():
        return values
    return values[np.repeat(mask, lengths)]


def _goodput(c: Columns, ok: BOOL, slo: Slo, duration_s: float) -> dict[str, Any]:
    meets = ok.copy()
    if slo.ttft_ms is not None:
        t = c.f("ttft_ms")
        meets &= _present(t) & (np.nan_to_num(t, nan=np.inf) <= slo.ttft_ms)
    if slo.tokens_per_s is not None:
        t = c.f("tokens_per_s")
        meets &= _present(t) & (np.nan_to_num(t, nan=-np.inf) >= slo.tokens_per_s)
    if slo.e2e_ms is not None:
        t = c.f("e2e_ms")
        meets &= _present(t) & (np.nan_to_num(t, nan=np.inf) <= slo.e2e_ms)
    good = int(meets.sum())
    n_ok = int(ok.sum())
    return {
        "slo": {"ttft_ms": slo.ttft_ms, "tokens_per_s": slo.tokens_per_s, "e2e_ms": slo.e2e_ms},
        "requests": good,
        "requests_per_s": good / duration_s if duration_s > 0 else None,
        "fraction_of_ok": good / n_ok if n_ok else None,
    }


def _key(kind: str, mask: BOOL) -> tuple[str, bytes]:
    return kind, hashlib.blake2b(np.packbits(mask).tobytes(), digest_size=16).digest()


def _chunk_values(t: F64, n: F64, lengths: npt.NDArray[np.int64], ok: BOOL) -> tuple[F64, F64, Any]:
    """(tokens per chunk, ITL per token, rounded tokens per chunk) of the masked records of one part:
    each gap between consecutive chunks of a record is spread over the later chunk's tokens."""
    per_chunk = _select(n, lengths, ok)
    t = _select(t, lengths, ok)
    lengths = lengths[ok]
    starts = np.zeros(per_chunk.size, dtype=np.bool_)
    ends = np.cumsum(lengths)
    starts[(ends - lengths)[lengths > 0]] = True
    later = ~starts
    k = np.maximum(1, np.rint(per_chunk)).astype(np.int64)
    gaps = np.empty(per_chunk.size, dtype=np.float64)
    if per_chunk.size:
        gaps[1:] = t[1:] - t[:-1]
    per_token = np.repeat(gaps[later] / k[later], k[later])
    return per_chunk, per_token, k


def _series_pass(c: Columns, itl_masks: Sequence[BOOL], chunk_masks: Sequence[BOOL] = ()) -> None:
    """The pooled-ITL distribution of each of ``itl_masks`` and the chunk statistics of each of
    ``chunk_masks``, all in the same two passes over the series, one part loaded at a time; memoised in
    ``c.extra``."""
    itl = {_key("itl", m): m for m in itl_masks if _key("itl", m) not in c.extra}
    chunks = {_key("chunks", m): m for m in chunk_masks if _key("chunks", m) not in c.extra}
    if not itl and not chunks:
        return
    itl_e = {k: Exact() for k in itl}
    chunk_e = {k: (Exact(), Exact()) for k in chunks}
    counts = {k: np.zeros(0, dtype=np.int64) for k in chunks}
    for second in (False, True):
        for start, stop, gaps, t, n in c.series:
            itl_len, chunk_len = c.itl_len[start:stop], c.chunk_len[start:stop]
            for key, mask in itl.items():
                values = _select(gaps, itl_len, mask[start:stop])
                itl_e[key].keep(values) if second else itl_e[key].see(values)
            for key, mask in chunks.items():
                per_chunk, per_token, k = _chunk_values(t, n, chunk_len, mask[start:stop])
                a, b = chunk_e[key]
                if second:
                    a.keep(per_chunk)
                    b.keep(per_token)
                    continue
                a.see(per_chunk)
                b.see(per_token)
                if k.size:
                    seen = np.bincount(k)
                    size = max(seen.size, counts[key].size)
                    counts[key] = np.pad(counts[key], (0, size - counts[key].size))
                    counts[key][: seen.size] += seen
        every = [*itl_e.values(), *(e for pair in chunk_e.values() for e in pair)]
        if second:
            break
        for e in every:
            e.plan()
        if not any(e.needs_second_pass for e in every):
            break
    for key, e in itl_e.items():
        c.extra[key] = e.result()
    for key, (a, b) in chunk_e.items():
        c.extra[key] = (a.result(), b.result(), counts[key])


def _pooled_itl(c: Columns, ok: BOOL) -> dict[str, float | int | None]:
    """The distribution of every gap of the masked records (memoised per mask: the whole run's is
    asked for twice, by its block and by the conventions; :func:`summarize_columns` asks for all of
    its masks in one :func:`_series_pass` first)."""
    _series_pass(c, [ok])
    return dict(c.extra[_key("itl", ok)])


def _ok(c: Columns, recs: BOOL, length_is_failure: bool) -> BOOL:
    """The records a block counts as succeeded (measured, success, not a length stop taken as failure)."""
    success = c.outcome == Outcome.SUCCESS.value
    ok: BOOL = recs & (c.outcome != Outcome.CANCELLED.value) & success
    return ok & ~c.length_stopped if length_is_failure else ok


def _block(
    c: Columns, recs: BOOL, duration_s: float, slo: Slo, length_is_failure: bool, *, itl: bool = True
) -> dict[str, Any]:
    measured = recs & (c.outcome != Outcome.CANCELLED.value)
    success = c.outcome == Outcome.SUCCESS.value
    as_length = success & c.length_stopped if length_is_failure else np.zeros_like(success)
    ok = measured & success & ~as_length  # = _ok(c, recs, length_is_failure)
    failures: dict[str, int] = {}
    for name in set(c.outcome[measured & ~success]):
        failures[str(name)] = int((measured & (c.outcome == name)).sum())
    if as_length.any() and (n := int((measured & as_length).sum())):
        failures[Outcome.LENGTH_STOPPED.value] = failures.get(Outcome.LENGTH_STOPPED.value, 0) + n
    n_ok, n_measured = int(ok.sum()), int(measured.sum())
    out_tokens = _sum_int(c.f("output_tokens"), ok)
    in_tokens = _sum_int(c.f("input_tokens"), ok)
    processed = measured & (_present(c.f("usage_input_tokens")) | _present(c.f("ttft_ms")))
    block: dict[str, Any] = {
        "requests": {
            "total": n_measured,
            "succeeded": n_ok,
            "failed": n_measured - n_ok,
            "failures": dict(sorted(failures.items())),
            "cancelled": int(recs.sum()) - n_measured,
            "length_stopped": int((ok & c.length_stopped).sum()),
        },
        "success_rate": n_ok / n_measured if n_measured else None,
        "itl_ms": _pooled_itl(c, ok) if itl else None,
        "throughput": {
            "requests_per_s": n_ok / duration_s if duration_s > 0 else None,
            "qpm": n_ok * 60.0 / duration_s if duration_s > 0 else None,
            "output_tokens_per_s": out_tokens / duration_s if duration_s > 0 else None,
            "input_tokens_per_s": in_tokens / duration_s if duration_s > 0 else None,
        },
        "tokens": {
            "input": in_tokens,
            "output": out_tokens,
            "billed_input": _sum_int(c.f("input_tokens"), processed),
            "billed_output": _sum_int(c.f("output_tokens"), processed),
            "thinking": _sum_int(c.f("thinking_tokens"), ok),
            "estimated": bool((measured & c.tokens_estimated).any()),
        },
        "goodput": _goodput(c, ok, slo, duration_s),
    }
    for key in LATENCY_KEYS:
        block[key] = _dist(c.f(key), ok)
    return block


def _conventions(c: Columns, ok: BOOL) -> dict[str, Any]:
    e2e, out = c.f("e2e_ms"), c.f("output_tokens")
    both = _truthy(e2e) & _truthy(out)
    with np.errstate(divide="ignore", invalid="ignore"):
        tpot_incl = np.where(both, e2e / out, np.nan)
        tps_e2e = np.where(both, out / (e2e / 1000), np.nan)
    values: dict[str, F64] = {
        "ttft_ms": c.f("ttft_ms"),
        "ttft_first_chunk_ms": c.f("first_chunk_ms"),
        "ttft_answer_ms": c.f("ttft_answer_ms"),
        "itl_request_mean_ms": c.f("tpot_ms"),
        "tpot_ms": c.f("tpot_ms"),
        "tpot_incl_first_ms": tpot_incl,
        "tokens_per_s": c.f("tokens_per_s"),
        "tokens_per_s_e2e": tps_e2e,
        "output_tokens_usage": c.f("usage_output_tokens"),
        "output_tokens_client": c.f("client_output_tokens"),
    }
    dists = {name: _dist(v, ok) for name, v in values.items()}
    dists["itl_pooled_ms"] = _pooled_itl(c, ok)
    order = [
        "ttft_ms",
        "ttft_first_chunk_ms",
        "ttft_answer_ms",
        "itl_pooled_ms",
        "itl_request_mean_ms",
        "tpot_ms",
        "tpot_incl_first_ms",
        "tokens_per_s",
        "tokens_per_s_e2e",
        "output_tokens_usage",
        "output_tokens_client",
    ]
    return {
        name: {"formula": CONVENTIONS[name][0], "used_by": CONVENTIONS[name][1], **dists[name]}
        for name in order
    }


def token_audit(c: Columns, threshold: float = 0.05) -> dict[str, Any]:
    u, k = c.f("usage_output_tokens"), c.f("client_output_tokens")
    pairs = _present(u) & _present(k)
    usage, client = _sum_int(u, pairs), _sum_int(k, pairs)
    with np.errstate(invalid="ignore"):
        off = pairs & (np.abs(u - k) > threshold * np.maximum(1, np.nan_to_num(k)))
    return {
        "compared": int(pairs.sum()),
        "usage_output_tokens": usage,
        "client_output_tokens": client,
        "discrepancy_pct": (usage - client) * 100.0 / client if client else None,
        "disagreeing": int(off.sum()),
        "disagreeing_ids": [str(x) for x in c.request_id[off][:50]],
    }


def _rates(c: Columns, recs: BOOL) -> dict[str, Any]:
    """``runner.quality``'s monitors over the masked records, vectorised (same rules as ``flags``)."""
    success = c.outcome == Outcome.SUCCESS.value
    ok = success | (c.outcome == Outcome.LENGTH_STOPPED.value)
    no_answer = c.outcome == Outcome.TRUNCATED_THINKING.value
    hits = {
        "empty_answer": (c.outcome == Outcome.EMPTY_ANSWER.value)
        | (no_answer & ~c.finish_length)
        | (ok & ~c.has_answer),
        "truncated_thinking": no_answer & c.finish_length,
        "cut_by_length": ok & c.has_answer & c.length_stopped,
        "reasoning_leak": ok & c.leak,
    }
    n = int(recs.sum())
    counts = {name: int((hits[name] & recs).sum()) for name in MONITORS}
    return {"requests": n, **{k: {"count": v, "rate": v / n if n else None} for k, v in counts.items()}}


def quality_block(c: Columns, recs: BOOL, buckets: Mapping[str, BOOL] | None = None) -> dict[str, Any]:
    measured = recs & (c.outcome != Outcome.CANCELLED.value)
    block = _rates(c, measured)
    block["by_bucket"] = {label: _rates(c, inside & measured) for label, inside in (buckets or {}).items()}
    variant = c.f("variant")
    variants = sorted({int(v) for v in variant[measured]})
    if len(variants) > 1:
        block["by_variant"] = {str(v): _rates(c, measured & (variant == v)) for v in variants}
    return block


def prefix_cache_share(c: Columns) -> dict[str, Any]:
    cached, inputs = c.f("cached_input_tokens"), c.f("input_tokens")
    told = (c.outcome != Outcome.CANCELLED.value) & _present(cached) & _truthy(inputs)
    hit = _sum_int(cached, told)
    total = _sum_int(inputs, told)
    return {
        "requests_reporting": int(told.sum()),
        "cached_input_tokens": hit,
        "input_tokens": total,
        "cached_share": hit / total if total else None,
        "requests_with_hits": int((told & _truthy(cached)).sum()),
    }


def chunk_stats(c: Columns, ok: BOOL) -> dict[str, Any]:
    """``runner.token_stats.chunk_stats`` over the masked records' content chunks."""
    sources = {
        SOURCES[int(s)]: int(n) for s, n in zip(*np.unique(c.source[ok], return_counts=True), strict=True)
    }
    sources = {name: sources[name] for name in _first_seen(c.source[ok])}
    _series_pass(c, [], [ok])
    per_chunk, per_token, counts = c.extra[_key("chunks", ok)]
    out_tokens, chunks = c.f("output_tokens"), c.f("content_chunks")
    return {
        "tokens_per_chunk": dict(per_chunk),
        "tokens_per_chunk_mean": _ratio(
            _sum_int(out_tokens, ok & (chunks != 0)), _sum_int(chunks, ok & _truthy(out_tokens))
        ),
        "tokens_per_chunk_histogram": {str(int(a)): int(counts[a]) for a in np.flatnonzero(counts)},
        "itl_per_token_ms": dict(per_token),
        "sources": sources,
    }


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def _first_seen(codes: npt.NDArray[np.int8]) -> list[str]:
    _, first = np.unique(codes, return_index=True)
    return [SOURCES[int(codes[i])] for i in sorted(first)]


def _thin(c: Columns, mask: BOOL) -> list[RequestRecord]:
    """Records with only what the accuracy block reads, for the masked rows."""
    idx = np.flatnonzero(mask)
    variant, level, correct = c.f("variant"), c.f("level"), c.correct
    return [
        RequestRecord(
            request_id=str(c.request_id[i]),
            prompt_id=str(c.prompt_id[i]),
            outcome=str(c.outcome[i]),
            variant=int(variant[i]),
            level=None if np.isnan(level[i]) else int(level[i]),
            correct=None if np.isnan(correct[i]) else bool(correct[i]),
        )
        for i in idx
    ]


def _gradable(c: Columns, prompts: Mapping[str, Prompt]) -> BOOL:
    expected = {k for k, p in prompts.items() if p.expected is not None}
    has_expected = np.fromiter((p in expected for p in c.prompt_id), dtype=np.bool_, count=c.size)
    failed = c.outcome != Outcome.SUCCESS.value
    out: BOOL = (c.outcome != Outcome.CANCELLED.value) & (_present(c.correct) | (failed & has_expected))
    return out


def _accuracy(
    c: Columns, recs: BOOL, prompts: Mapping[str, Prompt], buckets: Mapping[str, BOOL] | None, *, detail: bool
) -> dict[str, Any] | None:
    graded = _gradable(c, prompts)
    thin = _thin(c, recs & graded)
    if not thin:
        return None
    by_bucket = {label: _thin(c, inside & graded) for label, inside in (buckets or {}).items()}
    return accuracy_block(thin, prompts=prompts, buckets=by_bucket, detail=detail)


def _in_buckets(c: Columns, edges: Sequence[int]) -> dict[str, BOOL]:
    client, inputs = c.f("client_input_tokens"), c.f("input_tokens")
    n = np.where(_present(client), client, inputs)
    out: dict[str, BOOL] = {}
    for lo, hi in bucket_bounds(edges):
        with np.errstate(invalid="ignore"):
            inside = _present(n) & (n >= lo) & (np.ones_like(n, dtype=np.bool_) if hi is None else (n < hi))
        if inside.any():
            out[bucket_label(lo, hi)] = inside
    return out


def summarize_columns(
    c: Columns,
    *,
    duration_s: float,
    bucket_edges: Sequence[int] = (0, 1024, 4096, 16384, 32768, 49152),
    slo: Slo | None = None,
    price_in_per_1k: float = 0.0,
    price_out_per_1k: float = 0.0,
    currency: str = "USD",
    length_is_failure: bool = False,
    engine: dict[str, Any] | None = None,
    level_duration_s: float | None = None,
    prompts: Mapping[str, Prompt] | Iterable[Prompt] | None = None,
    mask: BOOL | None = None,
) -> dict[str, Any]:
    """:func:`runner.summary.summarize` of the records in ``c`` (only those in ``mask`` when given)."""
    recs = np.ones(c.size, dtype=np.bool_) if mask is None else mask
    by_id = _prompts_by_id(prompts)
    slo = slo or Slo()
    ok = recs & (c.outcome == Outcome.SUCCESS.value)
    in_bucket = {label: inside & recs for label, inside in _in_buckets(c, bucket_edges).items()}
    in_bucket = {label: inside for label, inside in in_bucket.items() if inside.any()}
    # every distribution over the gaps and chunks this summary shows, in one two-pass read of them
    blocks = [recs, *in_bucket.values()]
    _series_pass(c, [ok, *(_ok(c, m, length_is_failure) for m in blocks)], [ok])
    summary = {"schema_version": SCHEMA_VERSION, **_block(c, recs, duration_s, slo, length_is_failure)}
    summary["duration_s"] = duration_s
    summary["conventions"] = _conventions(c, ok)
    summary["schedule_lag_ms"] = _dist(c.f("schedule_lag_ms"), recs)
    summary["token_audit"] = token_audit(_masked(c, recs))
    t = summary["tokens"]
    summary["cost"] = {
        "currency": currency,
        "input": t["billed_input"] / 1000 * price_in_per_1k,
        "output": t["billed_output"] / 1000 * price_out_per_1k,
        "total": t["billed_input"] / 1000 * price_in_per_1k + t["billed_output"] / 1000 * price_out_per_1k,
    }
    summary["buckets"] = [
        {
            "label": bucket_label(lo, hi),
            "lo": lo,
            "hi": hi,
            **_block(c, inside, duration_s, slo, length_is_failure),
        }
        for lo, hi in bucket_bounds(bucket_edges)
        if (inside := in_bucket.get(bucket_label(lo, hi))) is not None
    ]
    level = c.f("level")
    levels = sorted({int(x) for x in level[recs & _present(level)]})
    if levels:
        summary["sweep"] = [
            _sweep_point(c, recs & (level == lv), lv, slo, length_is_failure, level_duration_s)
            | _quality_point(c, recs & (level == lv), by_id)
            for lv in levels
        ]
    accuracy = _accuracy(c, recs, by_id, in_bucket, detail=True)
    if accuracy is not None:
        summary["accuracy"] = accuracy
    summary["quality"] = quality_block(c, recs, in_bucket)
    summary["prefix_cache"] = prefix_cache_share(_masked(c, recs))
    summary["chunks"] = chunk_stats(c, ok)
    summary["engine"] = engine or {}
    return summary


def _masked(c: Columns, mask: BOOL) -> Columns:
    """The masked records only, without their series (for the few blocks that are cheaper to write over
    a subset and read no gaps)."""
    if mask.all():
        return c
    return Columns(
        floats={k: v[mask] for k, v in c.floats.items()},
        outcome=c.outcome[mask],
        request_id=c.request_id[mask],
        prompt_id=c.prompt_id[mask],
        correct=c.correct[mask],
        length_stopped=c.length_stopped[mask],
        tokens_estimated=c.tokens_estimated[mask],
        finish_length=c.finish_length[mask],
        has_answer=c.has_answer[mask],
        leak=c.leak[mask],
        itl_len=c.itl_len[mask],
        chunk_len=c.chunk_len[mask],
        source=c.source[mask],
        series=SeriesStore(usable=False),
    )


def _quality_point(c: Columns, recs: BOOL, prompts: Mapping[str, Prompt]) -> dict[str, Any]:
    q = quality_block(c, recs)
    point: dict[str, Any] = {"quality": {k: v for k, v in q.items() if k != "by_bucket"}}
    accuracy = _accuracy(c, recs, prompts, None, detail=False)
    if accuracy is not None:
        point["accuracy"] = accuracy
    return point


def _sweep_point(
    c: Columns, recs: BOOL, level: int, slo: Slo, length_is_failure: bool, level_duration_s: float | None
) -> dict[str, Any]:
    scheduled = c.f("scheduled_s")[recs]
    span = level_duration_s or (float(scheduled.max()) - float(scheduled.min())) or 1.0
    b = _block(c, recs, span, slo, length_is_failure, itl=False)  # a sweep point shows no ITL
    return {
        "level": level,
        "throughput": b["throughput"],
        "ttft_ms": b["ttft_ms"],
        "e2e_ms": b["e2e_ms"],
        "tokens_per_s": b["tokens_per_s"],
        "success_rate": b["success_rate"],
        "requests": b["requests"],
    }


__all__ = [
    "Columns",
    "SeriesStore",
    "chunk_series",
    "columns_from",
    "pack_series",
    "summarize_columns",
    "unpack_series",
]
