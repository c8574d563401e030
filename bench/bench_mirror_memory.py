"""What a mirror session keeps per request, by answer length: the compact store against a dict of
records (what the mirror kept before), measured with tracemalloc, and the objects the garbage
collector has to trace per request.

    .venv/bin/python bench/bench_mirror_memory.py [--requests 500]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.mirror.store import Pairing, RecordStore
from runner.records import RequestRecord


def record(rid: str, tokens: int) -> RequestRecord:
    """A finished streamed record of ``tokens`` one-token chunks, as the mirror's tap makes them."""
    return RequestRecord(
        request_id=rid,
        prompt_id=rid,
        ttft_ms=25.0,
        e2e_ms=25.0 + 2.0 * tokens,
        tokens_per_s=500.0,
        output_tokens=tokens,
        content_chunks=tokens,
        itl_ms=[2.0] * (tokens - 1),
        packets=[("answer", 25.0 + 2.0 * i, 1, 5, "word ") for i in range(tokens)],
        answer_text="word " * tokens,
        answer_chars=5 * tokens,
    )


def kept(n: int, tokens: int, compact: bool) -> tuple[float, float]:
    """(bytes, GC-tracked objects) retained per request after ``n`` requests, both sides."""
    gc.collect()
    tracemalloc.start()
    objects = len(gc.get_objects())
    before = tracemalloc.get_traced_memory()[0]
    add: Callable[[int, str, RequestRecord], None]
    if compact:
        pairing = Pairing()
        stores = (RecordStore(0, pairing), RecordStore(1, pairing))

        def add(side: int, rid: str, rec: RequestRecord) -> None:
            if side == 0:
                pairing.expect(rid)
            stores[side].add(rid, rec)
    else:
        sides: tuple[dict[str, RequestRecord], dict[str, RequestRecord]] = ({}, {})

        def add(side: int, rid: str, rec: RequestRecord) -> None:
            sides[side][rid] = rec

    for i in range(n):
        add(0, f"m{i}", record(f"m{i}", tokens))
        add(1, f"m{i}", record(f"m{i}", tokens))
    gc.collect()
    size = tracemalloc.get_traced_memory()[0] - before
    tracked = len(gc.get_objects()) - objects
    tracemalloc.stop()
    return size / n, tracked / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=500)
    args = ap.parse_args()
    print(
        "| tokens per answer | records kept: bytes / request | GC objects / request | compact: bytes / request | GC objects / request |"
    )
    print("|---:|---:|---:|---:|---:|")
    for tokens in (40, 400, 4000):
        full, full_objs = kept(args.requests, tokens, compact=False)
        small, small_objs = kept(args.requests, tokens, compact=True)
        print(f"| {tokens} | {full:,.0f} | {full_objs:,.1f} | {small:,.0f} | {small_objs:,.1f} |")


if __name__ == "__main__":
    main()
