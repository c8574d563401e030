"""Token-level views the per-request metrics do not give: the prefix cache seen from the client,
and chunks that carry several tokens (MTP / speculative decoding, batched streaming).

- ``prefix_cache``: the share of input tokens the server says it read from its cache
  (``usage.prompt_tokens_details.cached_tokens`` for OpenAI/vLLM, ``cache_read_input_tokens`` for
  Anthropic), over the requests that reported it.
- ``chunks``: tokens per content chunk, and inter-token latency *per token* beside the per-chunk
  ITL: a chunk's gap spread evenly over the tokens it carries. A chunk's token count is the
  server's when it states one per packet; otherwise the request's output tokens (usage, or the
  client's tokenizer) shared over its chunks in proportion to their characters — labelled.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from runner.records import RequestRecord
from runner.summary import distribution

__all__ = ["chunk_stats", "chunk_tokens", "prefix_cache_share"]

_CONTENT = frozenset({"thinking", "answer", "tool_call"})


def prefix_cache_share(records: Iterable[RequestRecord]) -> dict[str, Any]:
    told = [r for r in records if r.cached_input_tokens is not None and r.input_tokens]
    cached = sum(r.cached_input_tokens or 0 for r in told)
    total = sum(r.input_tokens or 0 for r in told)
    return {
        "requests_reporting": len(told),
        "cached_input_tokens": cached,
        "input_tokens": total,
        "cached_share": cached / total if total else None,
        "requests_with_hits": sum(1 for r in told if r.cached_input_tokens),
    }


def chunk_tokens(rec: RequestRecord) -> tuple[list[tuple[float, float]], str]:
    """``(arrival ms, tokens)`` per content chunk, and where the counts came from."""
    rows = [row for row in rec.packets if row[0] in _CONTENT]
    if not rows:
        return [], "none"
    if all(row[2] > 0 for row in rows):
        return [(row[1], float(row[2])) for row in rows], "server"
    chars = sum(row[3] for row in rows)
    out = rec.output_tokens or 0
    if not out or not chars:
        return [], "none"
    return [(row[1], out * row[3] / chars) for row in rows], "estimated_by_chars"


def chunk_stats(ok: Sequence[RequestRecord]) -> dict[str, Any]:
    per_chunk: list[float] = []
    per_token_itl: list[float] = []
    sources: dict[str, int] = {}
    for rec in ok:
        chunks, source = chunk_tokens(rec)
        sources[source] = sources.get(source, 0) + 1
        per_chunk.extend(n for _, n in chunks)
        for (t_prev, _), (t, n) in itertools.pairwise(chunks):
            k = max(1, round(n))
            per_token_itl.extend([(t - t_prev) / k] * k)
    histogram: dict[str, int] = {}
    for n in per_chunk:
        key = str(max(1, round(n)))
        histogram[key] = histogram.get(key, 0) + 1
    total_tokens = sum(r.output_tokens or 0 for r in ok if r.content_chunks)
    total_chunks = sum(r.content_chunks for r in ok if r.output_tokens)
    return {
        "tokens_per_chunk": distribution(per_chunk),
        # exact whatever the source: the requests' token counts over their chunk counts
        "tokens_per_chunk_mean": total_tokens / total_chunks if total_chunks else None,
        "tokens_per_chunk_histogram": dict(sorted(histogram.items(), key=lambda kv: int(kv[0]))),
        "itl_per_token_ms": distribution(per_token_itl),
        "sources": sources,
    }
