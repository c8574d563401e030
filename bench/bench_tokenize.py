"""Benchmark (not a test): Qwen3 token-counting throughput on long prompts.

Builds 20 synthetic prompts of 32k tokens each, then times a plain ``count`` loop, the batched
``count_many`` (worker thread, backend batch encode) and, as a baseline, transformers' own
``tokenizer.encode`` loop. Prints a markdown table. Run: ``.venv/bin/python bench/bench_tokenize.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed

from runner.datasets.synthetic import synthesize
from runner.tokenizers import HFTokenizer, count_many, load_tokenizer


def best_of(repeats: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """Fastest wall time of ``repeats`` runs (the least disturbed by other work) and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=32_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    tok = load_tokenizer("qwen3")
    assert isinstance(tok, HFTokenizer)
    start = time.perf_counter()
    items = synthesize(tok, n=args.prompts, distribution={"kind": "fixed", "tokens": args.tokens}, seed=0)
    build_s = time.perf_counter() - start
    texts = [i.prompt for i in items]
    total = sum(i.input_tokens for i in items)

    hf: Any = tok._hf  # the transformers tokenizer, for the baseline only
    rows = [
        ("`count` loop", lambda: [tok.count(t) for t in texts]),
        ("`count_many` (thread, batched)", lambda: asyncio.run(count_many(tok, texts))),
        ("transformers `encode` loop (baseline)", lambda: [len(hf.encode(t)) for t in texts]),
    ]
    print(
        f"{args.prompts} prompts × {args.tokens:,} tokens = {total:,} tokens, {len(''.join(texts)):,} chars;"
    )
    print(f"built by `synthesize` in {build_s:.2f} s; {os.cpu_count()} CPUs; best of {args.repeats} runs\n")
    print("| method | seconds | tokens/s | vs `count` loop |")
    print("| --- | ---: | ---: | ---: |")
    base = None
    for label, fn in rows:
        seconds, counts = best_of(args.repeats, fn)
        assert sum(counts) == total, f"{label} counted {sum(counts)}, expected {total}"
        base = base or seconds
        print(f"| {label} | {seconds:.3f} | {total / seconds:,.0f} | {base / seconds:.2f}× |")
    one = statistics.mean(best_of(3, functools.partial(tok.count, text))[0] for text in texts[:5])
    print(f"\none {args.tokens:,}-token prompt: {one * 1000:.1f} ms with `count`")


if __name__ == "__main__":
    main()
