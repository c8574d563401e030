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
from runner.budget import budget_report, budget_specs, parse_budget
from runner.engine import run
from runner.metrics import DISTRIBUTION_KEYS
from runner.quality import MONITORS
from runner.replay import REPLAY_FORMATS, Replay, ReplayError, load_replay, print_replay, replay_report
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
    r.add_argument(
        "--dataset",
        help="JSONL / CSV / ShareGPT / text file of prompts, or builtin:math500 / builtin:conversations",
    )
    r.add_argument(
        "--prompt-template",
        help="text with a {prompt} placeholder around each prompt (default: a built-in dataset's own; '' for none)",
    )
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
    r.add_argument("--replay", help="capture, access log, llmperf {t_s, prompt} JSONL or public trace")
    r.add_argument("--replay-format", choices=REPLAY_FORMATS, help="default: detected from the first line")
    r.add_argument("--replay-limit", type=int, default=0, help="replay only the first N requests of the file")
    r.add_argument("--speed", type=float, default=1.0, help="replay time scale: 2 = twice as fast")
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
    r.add_argument(
        "--budget-sweep",
        help="one run per thinking budget: max_tokens=512,1024,4096 or reasoning_effort=low,medium,high",
    )
    r.add_argument("--json", dest="json_out", help="write the summary JSON here")
    r.add_argument("--records", help="write per-request JSONL here")
    r.add_argument("--quiet", action="store_true", help="no live progress line")
    cli_studies.add_arguments(r)
    from runner.mirror import cli as mirror_cli  # issue #12: mirror proxy, capture

    mirror_cli.add_parser(sub)
    return p


def _replay(args: argparse.Namespace) -> Replay:
    """The ``--replay`` file, read once per command (prompts and profile both need it)."""
    loaded: Replay | None = getattr(args, "_replay_loaded", None)
    if loaded is None:
        if args.speed <= 0:
            raise SystemExit(f"--speed must be above 0, got {args.speed}")
        tok = None
        if args.tokenizer:
            from runner.tokenizers import load_tokenizer

            tok = load_tokenizer(args.tokenizer)
        try:
            loaded = load_replay(
                args.replay, args.replay_format, tokenizer=tok, seed=args.seed, limit=args.replay_limit
            )
        except (ReplayError, OSError) as exc:
            raise SystemExit(f"--replay {args.replay}: {exc}") from None
        if loaded.detected:
            print(f"replay: {args.replay} read as {loaded.format} (detected)", file=sys.stderr)
        for note in loaded.notes:
            print(f"replay: {note}", file=sys.stderr)
        args._replay_loaded = loaded
    return loaded


def load_prompts(args: argparse.Namespace) -> list[Prompt]:
    if args.replay and not args.dataset and _replay(args).prompts:
        return _replay(args).prompts
    if args.dataset:
        from runner.datasets import parse_dataset
        from runner.datasets.shipped import is_builtin, load_builtin, prompts_from_items

        if is_builtin(args.dataset):
            try:
                rows = load_builtin(args.dataset)
            except ValueError as exc:
                raise SystemExit(str(exc)) from None
        else:
            path = Path(args.dataset)
            result = parse_dataset(path.read_bytes(), filename=path.name)
            if result.errors:
                lines = "\n".join(f"  line {e.line}: {e.reason}" for e in result.errors[:20])
                raise SystemExit(f"{path}: {len(result.errors)} problem(s), nothing sent:\n{lines}")
            rows = result.items
        try:
            return prompts_from_items(rows, template=prompt_template(args))
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
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


def prompt_template(args: argparse.Namespace) -> str:
    """The template asked for, else a built-in dataset's own (MATH-500 asks for a boxed answer)."""
    if args.prompt_template is not None:
        return str(args.prompt_template)
    from runner.datasets.shipped import builtin, is_builtin

    return builtin(args.dataset).template if args.dataset and is_builtin(args.dataset) else ""


def build_profile(args: argparse.Namespace) -> ProfileSpec:
    common = {
        "seed": args.seed,
        "spawn_rate": args.spawn_rate,
        "rate_unit": "qpm" if args.qpm else "qps",
        "arrival": args.arrival,
        "max_concurrency": args.max_concurrency,  # open loop of any shape: rate, rate stages, rate sweep
    }
    if args.replay:
        return ProfileSpec(kind="replay", replay=_replay(args).entries, speed=args.speed, **common)
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
        prompt_template=prompt_template(args) if args.dataset else "",
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
        for i in range(0, len(batch), 32):
            if i:
                await asyncio.sleep(0)
            self.out.write(b"".join(orjson.dumps(rec) + b"\n" for rec in batch[i : i + 32]))

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
    for key in DISTRIBUTION_KEYS:
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
    print_accuracy(summary)
    e = summary["engine"]
    print(
        f"engine: {e.get('verdict')} (loop lag p99 {_fmt(e.get('lag_ms_p99'))} ms, "
        f"max {_fmt(e.get('lag_ms_max'))} ms; schedule lag p99 {_fmt(e.get('schedule_lag_ms_p99'))} ms)"
        + ("; " + "; ".join(e["reasons"]) if e.get("reasons") else "")
    )


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def print_accuracy(summary: dict[str, Any]) -> None:
    """The accuracy line (with its Wilson interval, per level) and the answer-quality line."""
    acc = summary.get("accuracy")
    if isinstance(acc, dict):
        lo, hi = acc["ci95"] or (None, None)
        levels = ", ".join(f"L{k} {_pct(v['rate'])}" for k, v in acc.get("by_level", {}).items())
        print(
            f"accuracy: {_pct(acc['rate'])} ({acc['correct']}/{acc['graded']} correct, 95% CI "
            f"{_pct(lo)}–{_pct(hi)}, {acc['failed']} failed counted wrong)"
            + (f"; {levels}" if levels else "")
        )
    for point in summary.get("sweep") or []:
        if point.get("accuracy"):
            print(
                f"  level {point['level']}: accuracy {_pct(point['accuracy']['rate'])} "
                f"(n={point['accuracy']['graded']}), TTFT p50 {_fmt(point['ttft_ms']['p50'])} ms"
            )
    q = summary.get("quality")
    if isinstance(q, dict) and q.get("requests"):
        print(
            "answers: "
            + ", ".join(f"{name.replace('_', ' ')} {q[name]['count']}" for name in MONITORS)
            + f" of {q['requests']}"
        )


async def _run_spec(spec: RunSpec, args: argparse.Namespace, cancel: asyncio.Event) -> dict[str, Any]:
    sink = ProgressSink(args.quiet, args.records)
    try:
        result = await run(spec, sink=sink, cancel=cancel)
    finally:
        sink.close()
    summary = {**result.summary, "ended_by": result.ended_by}
    if args.replay:
        summary["replay"] = replay_report(_replay(args), summary, [r.to_dict() for r in result.records])
    return summary


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
    if args.budget_sweep:
        return await _budget_sweep(spec, args, cancel)
    summary = await _run_spec(spec, args, cancel)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2))
    print_table(summary)
    if args.replay:
        print_replay(summary["replay"])
    return 0


async def _budget_sweep(spec: RunSpec, args: argparse.Namespace, cancel: asyncio.Event) -> int:
    """One run per budget level, one after another under the same load; then the budget table."""
    try:
        param, levels = parse_budget(args.budget_sweep)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    summaries = []
    for level, level_spec in zip(levels, budget_specs(spec, param, levels), strict=True):
        if cancel.is_set():
            break
        summaries.append(await _run_spec(level_spec, args, cancel))
        print(f"--- {param}={level}")
        print_table(summaries[-1])
    report = budget_report(param, levels[: len(summaries)], summaries)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"budget_sweep": report, "runs": summaries}, indent=2))
    print_budget(report)
    return 0


def print_budget(report: dict[str, Any]) -> None:
    print(f"{report['param']:<18}{'accuracy':>10}{'empty':>8}{'trunc.':>8}{'TTFT p50':>10}{'E2E p50':>10}")
    for p in report["points"]:
        acc = p["accuracy"]["rate"] if p["accuracy"] else None
        print(
            f"{p['budget']!s:<18}{_pct(acc):>10}{_pct(p['empty_answer_rate']):>8}"
            f"{_pct(p['truncated_thinking_rate']):>8}{_fmt((p['ttft_ms'] or {}).get('p50')):>10}"
            f"{_fmt((p['e2e_ms'] or {}).get('p50')):>10}"
        )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("run", "mirror"):
        from runner.mirror import cli as mirror_cli

        main = _run(args) if args.command == "run" else mirror_cli.run(args)
        try:
            import uvloop

            return uvloop.run(main)
        except ImportError:  # pragma: no cover
            return asyncio.run(main)
    return 2
