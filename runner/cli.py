"""``python -m runner run``: headless runs for terminals and CI."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import orjson

from runner import cli_studies, profiles
from runner.engine import run
from runner.spec import PROTOCOLS, EndpointSpec, ProfileSpec, Prompt, RunSpec, Slo, Timeouts


def _stages(text: str) -> list[dict[str, float]]:
    """``30:10,60:50`` → two stages: 30 s to 10, then 60 s to 50."""
    out = []
    for part in text.split(","):
        d, _, target = part.partition(":")
        out.append({"duration_s": float(d), "target": float(target)})
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runner", description="llmperf load engine")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a load test against an endpoint")
    r.add_argument("--url", required=True, help="base URL as the provider gives it, e.g. http://host:8000/v1")
    r.add_argument("--protocol", default="openai-chat", choices=PROTOCOLS)
    r.add_argument("--model", default="")
    r.add_argument("--api-key", default="")
    r.add_argument("--header", action="append", default=[], help="extra header 'Name: value' (repeatable)")
    r.add_argument("--dataset", help="JSONL / CSV / ShareGPT / text file of prompts")
    r.add_argument("--synthetic", type=int, default=0, help="N synthetic prompts (with --input-tokens)")
    r.add_argument("--input-tokens", type=int, default=128)
    r.add_argument("--tokenizer", default="", help="local tokenizer folder/file or packaged name (qwen3)")
    r.add_argument("--users", type=int, default=1)
    r.add_argument("--spawn-rate", type=float, default=1.0, help="users added per second")
    r.add_argument("--rate", type=float, help="open loop: requests per second (or per minute with --qpm)")
    r.add_argument("--qpm", action="store_true", help="--rate is per minute")
    r.add_argument("--arrival", choices=("poisson", "constant"), default="poisson")
    r.add_argument("--max-concurrency", type=int, default=0, help="open loop cap on in-flight requests")
    r.add_argument("--stages", type=_stages, help="'30:10,60:50' duration_s:target pairs")
    r.add_argument("--stage-mode", choices=("users", "rate"), default="users")
    r.add_argument("--sweep", help="comma-separated levels, e.g. 1,4,16,64")
    r.add_argument("--sweep-mode", choices=("users", "rate"), default="users")
    r.add_argument("--level-duration", type=float, default=30.0)
    r.add_argument("--replay", help="JSONL of {t_s, prompt} entries")
    r.add_argument("--speed", type=float, default=1.0)
    r.add_argument("--duration", type=float, help="seconds (default 60 unless --requests is given)")
    r.add_argument("--requests", type=int, help="stop after this many requests")
    r.add_argument("--max-tokens", type=int)
    r.add_argument("--temperature", type=float)
    r.add_argument("--timeout", type=float, default=600.0, help="total timeout per request, seconds")
    r.add_argument("--idle-timeout", type=float, default=60.0, help="between content packets, seconds")
    r.add_argument("--first-byte-timeout", type=float, default=120.0, help="until the first token, seconds")
    r.add_argument("--connect-timeout", type=float, default=10.0)
    r.add_argument("--drain", type=float, default=30.0, help="seconds in-flight requests get after the end")
    r.add_argument("--buckets", default="0,1024,4096,16384,32768,49152", help="input-token bucket edges")
    r.add_argument("--slo-ttft-ms", type=float, default=2000.0)
    r.add_argument("--slo-tokens-per-s", type=float, default=20.0)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--json", dest="json_out", help="write the summary JSON here")
    r.add_argument("--records", help="write per-request JSONL here")
    r.add_argument("--quiet", action="store_true", help="no live progress line")
    cli_studies.add_arguments(r)
    return p


def _replay_log(path: str) -> list[dict[str, Any]]:
    """A traffic log: JSONL of ``{"t_s": offset, "prompt": index}`` or with the request itself
    (``"prompt": "text"`` or ``"messages": [...]``), e.g. mirrored production traffic."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def load_prompts(args: argparse.Namespace) -> list[Prompt]:
    if args.replay and not args.dataset:
        log = _replay_log(args.replay)
        if all(isinstance(e.get("prompt"), str) or e.get("messages") for e in log):
            return [
                Prompt(
                    id=str(e.get("id", i)),
                    text=e.get("prompt") or "",
                    messages=e.get("messages"),
                    max_tokens=e.get("max_tokens"),
                )
                for i, e in enumerate(log)
            ]
    if args.dataset:
        from runner.datasets import parse_dataset

        path = Path(args.dataset)
        result = parse_dataset(path.read_bytes(), filename=path.name)
        if result.errors:
            lines = "\n".join(f"  line {e.line}: {e.reason}" for e in result.errors[:20])
            raise SystemExit(f"{path}: {len(result.errors)} problem(s), nothing sent:\n{lines}")
        return [
            Prompt(
                id=str(i),
                text=item.prompt or "",
                messages=item.messages,
                max_tokens=item.max_tokens,
                expected=item.expected,
            )
            for i, item in enumerate(result.items)
        ]
    n = args.synthetic or 64
    if args.tokenizer:
        from runner.datasets.synthetic import synthesize
        from runner.tokenizers import load_tokenizer

        tok = load_tokenizer(args.tokenizer)
        items = synthesize(
            tok, n=n, distribution={"kind": "fixed", "tokens": args.input_tokens}, seed=args.seed
        )
        return [Prompt(id=str(i), text=it.prompt, input_tokens=it.input_tokens) for i, it in enumerate(items)]
    words = "the quick brown fox jumps over a lazy dog while measuring every token".split()
    return [
        Prompt(id=str(i), text=" ".join(words[(i + k) % len(words)] for k in range(args.input_tokens)))
        for i in range(n)
    ]


def build_profile(args: argparse.Namespace) -> ProfileSpec:
    common = {
        "seed": args.seed,
        "spawn_rate": args.spawn_rate,
        "rate_unit": "qpm" if args.qpm else "qps",
        "arrival": args.arrival,
        "max_concurrency": args.max_concurrency,  # open loop of any shape: rate, rate stages, rate sweep
    }
    if args.replay:
        entries = [
            {"t_s": float(e["t_s"]), "prompt": float(e["prompt"] if isinstance(e.get("prompt"), int) else i)}
            for i, e in enumerate(_replay_log(args.replay))
        ]
        return ProfileSpec(kind="replay", replay=entries, speed=args.speed, **common)
    if args.sweep:
        levels = [float(x) for x in args.sweep.split(",")]
        return ProfileSpec(
            kind="sweep",
            sweep_levels=levels,
            sweep_mode=args.sweep_mode,
            level_duration_s=args.level_duration,
            **common,
        )
    if args.stages:
        return ProfileSpec(kind="stages", stages=args.stages, stage_mode=args.stage_mode, **common)
    if args.rate is not None:
        return ProfileSpec(kind="rate", rate=args.rate, **common)
    return ProfileSpec(kind="users", users=args.users, **common)


def build_spec(args: argparse.Namespace) -> RunSpec:
    headers = {}
    for h in args.header:
        name, _, value = h.partition(":")
        headers[name.strip()] = value.strip()
    params: dict[str, Any] = {}
    if args.max_tokens is not None:
        params["max_tokens"] = args.max_tokens
    if args.temperature is not None:
        params["temperature"] = args.temperature
    endpoint = EndpointSpec(
        protocol=args.protocol,
        base_url=args.url,
        model=args.model,
        api_key=args.api_key,
        headers=headers,
        params=params,
        tokenizer=args.tokenizer,
        timeouts=Timeouts(
            connect=args.connect_timeout,
            first_byte=args.first_byte_timeout,
            idle=args.idle_timeout,
            total=args.timeout,
        ),
    )
    profile = build_profile(args)
    own_length = profiles.duration(profile) is not None or profile.kind == "replay"
    duration = args.duration if args.duration is not None else (None if args.requests or own_length else 60.0)
    return RunSpec(
        endpoint=endpoint,
        prompts=load_prompts(args),
        profile=profile,
        duration_s=duration,
        max_requests=args.requests,
        bucket_edges=[int(x) for x in args.buckets.split(",")],
        slo=Slo(ttft_ms=args.slo_ttft_ms, tokens_per_s=args.slo_tokens_per_s),
        drain_s=args.drain,
    )


class ProgressSink:
    """The CLI's sink: records to a JSONL file, a progress line on stderr. It runs on the measuring
    loop, so each call is short: orjson in slices, and the progress line from plain counts of the
    records handed over (no histogram decoding; the exact numbers come in the summary)."""

    def __init__(self, quiet: bool, records_path: str | None) -> None:
        self.quiet = quiet
        self.out = open(records_path, "wb") if records_path else None  # noqa: SIM115 - closed in close()
        self.ok = self.failed = 0
        self.ttft_p50: float | None = None
        self.users = 0
        self.ticks = 0
        self.recent: deque[tuple[float, int]] = deque()  # (monotonic s, completions) for QPM

    async def on_records(self, batch: list[dict[str, Any]]) -> None:
        ok = [r for r in batch if r["outcome"] == "success"]
        self.ok += len(ok)
        self.failed += sum(1 for r in batch if r["outcome"] not in ("success", "cancelled"))
        ttfts = sorted(r["ttft_ms"] for r in ok if r["ttft_ms"] is not None)
        if ttfts:
            self.ttft_p50 = ttfts[len(ttfts) // 2]
        self.recent.append((time.monotonic(), len(batch)))
        if self.out is None:
            return
        for i in range(0, len(batch), 64):
            if i:
                await asyncio.sleep(0)
            self.out.write(b"".join(orjson.dumps(rec) + b"\n" for rec in batch[i : i + 64]))

    async def on_tick(self, delta: dict[str, Any]) -> None:
        self.ticks += 1
        gauges = delta.get("gauges") or {}
        if gauges:
            self.users = int(gauges[max(gauges, key=int)])
        if self.quiet:
            return
        now = time.monotonic()
        while self.recent and now - self.recent[0][0] > 10:
            self.recent.popleft()
        span = min(10.0, max(1.0, float(self.ticks)))
        qpm = sum(n for _, n in self.recent) * 60.0 / span
        ttft = f"{self.ttft_p50:.0f}" if self.ttft_p50 is not None else "-"
        sys.stderr.write(
            f"\r[{self.ticks:>4}s] users {self.users:>4} | ok {self.ok:>6} fail {self.failed:>4} "
            f"| TTFT p50 {ttft:>6} ms (last second) | QPM (completions) {qpm:>7.0f}   "
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.out is not None:
            self.out.close()
        if not self.quiet:
            sys.stderr.write("\n")


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.1f}" if isinstance(v, float) else str(v)


def print_table(summary: dict[str, Any]) -> None:
    req = summary["requests"]
    print(
        f"requests: {req['total']} total, {req['succeeded']} ok, {req['failed']} failed {req['failures'] or ''}"
    )
    print(f"{'metric':<18}{'p50':>10}{'p90':>10}{'p95':>10}{'p99':>10}{'mean':>10}{'max':>10}")
    for key in ("ttft_ms", "ttft_answer_ms", "itl_ms", "tpot_ms", "e2e_ms", "tokens_per_s"):
        d = summary[key]
        print(
            f"{key:<18}" + "".join(f"{_fmt(d[q]):>10}" for q in ("p50", "p90", "p95", "p99", "mean", "max"))
        )
    t = summary["throughput"]
    print(
        f"throughput: {_fmt(t['requests_per_s'])} req/s, {_fmt(t['qpm'])} QPM, "
        f"{_fmt(t['output_tokens_per_s'])} output tokens/s"
    )
    for b in summary["buckets"]:
        print(
            f"  bucket {b['label']:<10} n={b['requests']['total']:<6} TTFT p50 {_fmt(b['ttft_ms']['p50'])} ms"
            f"  tokens/s p50 {_fmt(b['tokens_per_s']['p50'])}"
        )
    e = summary["engine"]
    print(
        f"engine: {e.get('verdict')} (loop lag p99 {_fmt(e.get('lag_ms_p99'))} ms, "
        f"max {_fmt(e.get('lag_ms_max'))} ms; schedule lag p99 {_fmt(e.get('schedule_lag_ms_p99'))} ms)"
        + ("; " + "; ".join(e["reasons"]) if e.get("reasons") else "")
    )


async def _run(args: argparse.Namespace) -> int:
    spec = build_spec(args)
    cancel = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, cancel.set)  # Ctrl-C cancels but keeps what was measured
    if cli_studies.wanted(args):  # capacity search, repeats, KV-cache reuse, server metrics
        summary, lines = await cli_studies.study(
            args, spec, cancel, lambda records: ProgressSink(args.quiet, records)
        )
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(summary, indent=2))
        if "requests" in summary:
            print_table(summary)
        print("\n".join(lines))
        return 0
    sink = ProgressSink(args.quiet, args.records)
    try:
        result = await run(spec, sink=sink, cancel=cancel)
    finally:
        sink.close()
    summary = {**result.summary, "ended_by": result.ended_by}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2))
    print_table(summary)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        try:
            import uvloop

            return uvloop.run(_run(args))
        except ImportError:  # pragma: no cover
            return asyncio.run(_run(args))
    return 2
