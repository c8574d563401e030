"""``python -m runner run``: headless runs for terminals and CI."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
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
from runner.limits import Limits, run_problems
from runner.metrics import DISTRIBUTION_KEYS
from runner.quality import MONITORS
from runner.replay import REPLAY_FORMATS, Replay, ReplayError, load_replay, print_replay, replay_report
from runner.spec import PROTOCOLS, EndpointSpec, GenericFormat, ProfileSpec, Prompt, RunSpec, Slo, Timeouts


def _stages(text: str) -> list[dict[str, float]]:
    """``30:10,60:50`` → two stages: 30 s to 10, then 60 s to 50."""
    out = []
    for part in text.split(","):
        d, _, target = part.partition(":")
        out.append({"duration_s": float(d), "target": float(target)})
    return out


EXAMPLES = """\
examples:
  # 32 users ramping at 2/s for a minute against a vLLM server, Qwen3 token counts, priced
  python -m runner run --url http://gpu:8000/v1 --model qwen3-32b --users 32 --spawn-rate 2 \\
      --duration 60 --dataset prompts.jsonl --tokenizer qwen3 --price-in 0.0005 --price-out 0.0015

  # open loop at 300 QPM, Poisson arrivals, the records and the summary kept
  python -m runner run --url ... --rate 300 --qpm --duration 120 --json s.json --records r.jsonl

  # an endpoint described in a file (same fields as the dashboard's form; the key from $API_KEY)
  python -m runner run --endpoint endpoint.yaml --users 8 --requests 200

  # throughput against latency, accuracy on MATH-500, the highest QPM meeting the SLOs
  python -m runner run --url ... --sweep 1,4,16,64 --level-duration 30
  python -m runner run --url ... --dataset builtin:math500 --users 32 --requests 500
  python -m runner run --url ... --find-capacity --slo-ttft-ms 2000 --slo-tokens-per-s 20

Ctrl-C cancels and keeps every record measured so far. Exit status 0 once the summary is printed.
Every metric is defined in the README's glossary; TTFT counts from the scheduled send.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runner", description="llmperf load engine")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser(
        "run",
        help="run a load test against an endpoint",
        description="Drive a load profile against an LLM endpoint and measure every stream: TTFT, "
        "inter-token latency, tokens/s per request, QPM, failures by class, per input-token bucket.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = r.add_argument_group("target")
    g.add_argument("--url", help="base URL as the provider gives it, e.g. http://host:8000/v1")
    g.add_argument(
        "--endpoint",
        metavar="FILE.yaml",
        help="the endpoint as YAML/JSON with the dashboard form's fields (protocol, base_url, model, "
        "headers, timeouts, generic, prices, tokenizer, max_event_bytes); api_key_env names the "
        "variable holding the key — keys never go in the file",
    )
    g.add_argument("--protocol", choices=PROTOCOLS, help="default openai-chat")
    g.add_argument("--model", default=None)
    g.add_argument("--api-key", default="", help="better: --api-key-env NAME")
    g.add_argument("--api-key-env", metavar="NAME", help="read the API key from this environment variable")
    g.add_argument("--header", action="append", default=[], help="extra header 'Name: value' (repeatable)")
    g.add_argument(
        "--extra-params",
        metavar="JSON",
        help='more request body fields, e.g. \'{"top_p": 0.9, "reasoning_effort": "low"}\'',
    )
    g.add_argument("--price-in", type=float, default=None, help="price per 1k input tokens")
    g.add_argument("--price-out", type=float, default=None, help="price per 1k output tokens")
    g.add_argument("--currency", default=None, help="three letters, default USD")
    g.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="variant tag kept with the summary, e.g. quantization=int4 (repeatable)",
    )
    g = r.add_argument_group("custom stream schema (generic-sse / generic-ws)")
    g.add_argument("--body-template", help="request body with {{prompt}}, {{model}}, {{max_tokens}}")
    g.add_argument("--path", help="URL path appended to the base URL")
    for name in ("thinking", "answer", "usage", "finish", "done", "error"):
        g.add_argument(f"--{name}-path", help=f"dotted JSON path of the {name} field, e.g. choices.0.text")
    g.add_argument("--kind-path", help="dotted path of a field naming each event's kind")
    g.add_argument(
        "--kind-map", metavar="JSON", help='kind values to packet kinds, e.g. \'{"delta": "answer"}\''
    )
    g = r.add_argument_group("prompts")
    g.add_argument(
        "--dataset",
        help="JSONL / CSV / ShareGPT / text file of prompts, or builtin:math500 / builtin:conversations",
    )
    g.add_argument(
        "--prompt-template",
        help="text with a {prompt} placeholder around each prompt (default: a built-in dataset's own; '' for none)",
    )
    g.add_argument("--synthetic", type=int, default=0, help="N synthetic prompts (with --input-tokens)")
    g.add_argument("--input-tokens", type=int, default=128)
    g.add_argument("--tokenizer", default=None, help="local tokenizer folder/file or packaged name (qwen3)")
    g = r.add_argument_group("load")
    g.add_argument("--users", type=int, default=1)
    g.add_argument("--spawn-rate", type=float, default=1.0, help="users added per second")
    g.add_argument("--rate", type=float, help="open loop: requests per second (or per minute with --qpm)")
    g.add_argument("--qpm", action="store_true", help="--rate is per minute")
    g.add_argument("--arrival", choices=("poisson", "constant"), default="poisson")
    g.add_argument("--max-concurrency", type=int, default=0, help="open loop cap on in-flight requests")
    g.add_argument("--stages", type=_stages, help="'30:10,60:50' duration_s:target pairs")
    g.add_argument("--stage-mode", choices=("users", "rate"), default="users")
    g.add_argument("--sweep", help="comma-separated levels, e.g. 1,4,16,64")
    g.add_argument("--sweep-mode", choices=("users", "rate"), default="users")
    g.add_argument("--level-duration", type=float, default=30.0)
    g.add_argument("--replay", help="capture, access log, llmperf {t_s, prompt} JSONL or public trace")
    g.add_argument("--replay-format", choices=REPLAY_FORMATS, help="default: detected from the first line")
    g.add_argument("--replay-limit", type=int, default=0, help="replay only the first N requests of the file")
    g.add_argument("--speed", type=float, default=1.0, help="replay time scale: 2 = twice as fast")
    g.add_argument("--seed", type=int, default=0)
    g = r.add_argument_group("stop conditions and timeouts")
    g.add_argument("--duration", type=float, help="seconds (default 60 unless --requests is given)")
    g.add_argument("--requests", type=int, help="stop after this many requests")
    g.add_argument("--max-tokens", type=int)
    g.add_argument("--temperature", type=float)
    g.add_argument("--timeout", type=float, default=None, help="total timeout per request, seconds (600)")
    g.add_argument("--idle-timeout", type=float, default=None, help="between content packets, seconds (60)")
    g.add_argument(
        "--first-byte-timeout", type=float, default=None, help="until the first token, seconds (120)"
    )
    g.add_argument("--connect-timeout", type=float, default=None, help="seconds (10)")
    g.add_argument("--drain", type=float, default=30.0, help="seconds in-flight requests get after the end")
    g = r.add_argument_group("SLOs and analysis")
    g.add_argument("--buckets", default="0,1024,4096,16384,32768,49152", help="input-token bucket edges")
    g.add_argument("--slo-ttft-ms", type=float, default=2000.0)
    g.add_argument("--slo-tokens-per-s", type=float, default=20.0)
    g.add_argument(
        "--budget-sweep",
        help="one run per thinking budget: max_tokens=512,1024,4096 or reasoning_effort=low,medium,high",
    )
    g = r.add_argument_group("output")
    g.add_argument("--json", dest="json_out", help="write the summary JSON here (with its schema_version)")
    g.add_argument("--records", help="write per-request JSONL here")
    g.add_argument(
        "--tables",
        default="audit,sweep,conventions",
        help="extra tables after the summary: audit, sweep, conventions (or none)",
    )
    g.add_argument("--quiet", action="store_true", help="no live progress line")
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
    endpoint = build_endpoint(args)
    args.tokenizer = args.tokenizer or endpoint.tokenizer  # synthetic and replayed prompts count with it
    profile = build_profile(args)
    if args.replay and _replay(args).websocket and endpoint.protocol != "generic-ws":
        print(
            f"replay: {_replay(args).websocket} captured WebSocket sessions go as {endpoint.protocol} "
            "requests; --protocol generic-ws sends them over WebSocket again",
            file=sys.stderr,
        )
    own_length = profiles.duration(profile) is not None or profile.kind == "replay"
    duration = args.duration if args.duration is not None else (None if args.requests or own_length else 60.0)
    return RunSpec(
        endpoint=endpoint,
        prompts=load_prompts(args),
        profile=profile,
        duration_s=duration,
        max_requests=args.requests,
        bucket_edges=[int(x) for x in args.buckets.split(",")],
        slo=Slo(
            ttft_ms=args.slo_ttft_ms,
            tokens_per_s=args.slo_tokens_per_s,
            e2e_ms=getattr(args, "slo_e2e_ms", None),
        ),
        drain_s=args.drain,
        prompt_template=prompt_template(args) if args.dataset else "",
    )


def build_endpoint(args: argparse.Namespace) -> EndpointSpec:
    """The endpoint from ``--endpoint FILE`` (if any), then every flag given on top of it."""
    try:
        ep = (
            endpoint_file(Path(args.endpoint))
            if args.endpoint
            else EndpointSpec(protocol="openai-chat", base_url="")
        )
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--endpoint {args.endpoint}: {exc}") from None
    if args.url:
        ep.base_url = args.url
    if not ep.base_url:
        raise SystemExit("give --url, or --endpoint FILE with a base_url")
    for flag, attr in (
        ("protocol", "protocol"),
        ("model", "model"),
        ("tokenizer", "tokenizer"),
        ("price_in", "price_in_per_1k"),
        ("price_out", "price_out_per_1k"),
        ("currency", "currency"),
    ):
        if getattr(args, flag) is not None:
            setattr(ep, attr, getattr(args, flag))
    if args.api_key:
        ep.api_key = args.api_key
    if args.api_key_env:
        ep.api_key = _key_from_env(args.api_key_env)
    for h in args.header:
        name, _, value = h.partition(":")
        ep.headers[name.strip()] = value.strip()
    if args.extra_params:
        ep.params.update(_json_object(args.extra_params, "--extra-params"))
    if args.max_tokens is not None:
        ep.params["max_tokens"] = args.max_tokens
    if args.temperature is not None:
        ep.params["temperature"] = args.temperature
    for flag, attr in (
        ("connect_timeout", "connect"),
        ("first_byte_timeout", "first_byte"),
        ("idle_timeout", "idle"),
        ("timeout", "total"),
    ):
        if getattr(args, flag) is not None:
            setattr(ep.timeouts, attr, getattr(args, flag))
    _generic_flags(args, ep)
    return ep


_ENDPOINT_FIELDS = {
    "protocol",
    "base_url",
    "url",
    "model",
    "api_key_env",
    "headers",
    "timeouts",
    "params",
    "generic",
    "price_in_per_1k",
    "price_out_per_1k",
    "currency",
    "tokenizer",
    "max_event_bytes",
    "max_input_tokens",
}


def endpoint_file(path: Path) -> EndpointSpec:
    """An endpoint described in YAML or JSON with the dashboard form's fields. Unknown keys are
    refused (a misspelt key must not be silently dropped) and the key itself never lives in it."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"not YAML or JSON: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise ValueError("must be a mapping of endpoint fields")
    data = data.get("endpoint", data) if isinstance(data.get("endpoint"), dict) else data
    if "api_key" in data:
        raise ValueError("holds an api_key: keys never go in a file — name the variable with api_key_env")
    unknown = sorted(set(data) - _ENDPOINT_FIELDS)
    if unknown:
        raise ValueError(
            f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(_ENDPOINT_FIELDS))}"
        )
    generic = data.get("generic") or {}
    known_generic = {f.name for f in dataclasses.fields(GenericFormat)}
    if set(generic) - known_generic:
        bad = ", ".join(sorted(set(generic) - known_generic))
        raise ValueError(f"unknown generic field(s) {bad}; known: {', '.join(sorted(known_generic))}")
    timeouts = data.get("timeouts") or {}
    if set(timeouts) - {"connect", "first_byte", "idle", "total"}:
        raise ValueError("timeouts take connect, first_byte, idle and total (seconds)")
    ep = EndpointSpec(
        protocol=str(data.get("protocol", "openai-chat")),
        base_url=str(data.get("base_url") or data.get("url") or ""),
        model=str(data.get("model", "")),
        headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
        timeouts=Timeouts(**{k: float(v) for k, v in timeouts.items()}),
        params=dict(data.get("params") or {}),
        generic=GenericFormat(**generic),
        price_in_per_1k=float(data.get("price_in_per_1k", 0.0)),
        price_out_per_1k=float(data.get("price_out_per_1k", 0.0)),
        currency=str(data.get("currency", "USD")),
        tokenizer=str(data.get("tokenizer", "")),
        max_event_bytes=int(data.get("max_event_bytes", 1 << 20)),
        max_input_tokens=int(data.get("max_input_tokens", 0)),
    )
    if ep.protocol not in PROTOCOLS:
        raise ValueError(f"protocol {ep.protocol!r} is not one of {', '.join(PROTOCOLS)}")
    if data.get("api_key_env"):
        ep.api_key = _key_from_env(str(data["api_key_env"]))
    return ep


def _key_from_env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise SystemExit(f"the API key variable {name} is not set")
    return value


def _json_object(text: str, flag: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"{flag}: not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise SystemExit(f"{flag}: must be a JSON object")
    return value


def _generic_flags(args: argparse.Namespace, ep: EndpointSpec) -> None:
    if args.body_template is not None:
        ep.generic.body_template = args.body_template
    if args.path is not None:
        ep.generic.path = args.path
    for name in ("thinking", "answer", "usage", "finish", "done", "error", "kind"):
        value = getattr(args, f"{name}_path")
        if value is not None:
            setattr(ep.generic, f"{name}_path", value)
    if args.kind_map:
        ep.generic.kind_map = {str(k): str(v) for k, v in _json_object(args.kind_map, "--kind-map").items()}
    if ep.protocol.startswith("generic"):
        from runner.protocols import check_template

        problem = check_template(ep.generic)
        if problem:
            raise SystemExit(f"--body-template: {problem}")


def parse_tags(pairs: list[str]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--tag {pair!r}: use key=value, e.g. quantization=int4")
        tags[key.strip()] = value.strip()
    return tags


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
        f"max {_fmt(e.get('lag_ms_max'))} ms; schedule lag p99 {_fmt(e.get('schedule_lag_ms_p99'))} ms; "
        f"reads waited for their task p99 {_fmt(e.get('read_queue_ms_p99'))} ms, kept out of the stamps)"
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


def print_extra_tables(summary: dict[str, Any], which: str) -> None:
    """The token audit, the sweep curve and every other tool's convention, as the run page shows."""
    wanted = {w.strip() for w in which.split(",")}
    audit = summary.get("token_audit") or {}
    if "audit" in wanted and audit.get("compared"):
        print(
            f"\ntoken audit: server usage {audit['usage_output_tokens']} vs client count "
            f"{audit['client_output_tokens']} output tokens over {audit['compared']} requests "
            f"({_fmt(audit['discrepancy_pct'])}%); {audit['disagreeing']} disagree by over 5%"
        )
    if "sweep" in wanted and summary.get("sweep"):
        print(
            f"\n{'level':>8}{'req/s':>10}{'QPM':>10}{'TTFT p50':>10}{'TTFT p99':>10}{'tok/s p50':>11}{'success':>9}"
        )
        for point in summary["sweep"]:
            t = point["throughput"]
            print(
                f"{point['level']:>8}{_fmt(t['requests_per_s']):>10}{_fmt(t['qpm']):>10}"
                f"{_fmt(point['ttft_ms']['p50']):>10}{_fmt(point['ttft_ms']['p99']):>10}"
                f"{_fmt(point['tokens_per_s']['p50']):>11}{_fmt(point['success_rate']):>9}"
            )
    if "conventions" in wanted and summary.get("conventions"):
        print(f"\nhow other tools would report this run\n{'metric':<22}{'p50':>9}{'p99':>9}  used by")
        for name, d in summary["conventions"].items():
            print(f"{name:<22}{_fmt(d.get('p50')):>9}{_fmt(d.get('p99')):>9}  {d['used_by']}")


async def _run_spec(spec: RunSpec, args: argparse.Namespace, cancel: asyncio.Event) -> dict[str, Any]:
    sink = ProgressSink(args.quiet, args.records)
    try:
        result = await run(spec, sink=sink, cancel=cancel)
    finally:
        sink.close()
    summary = {**result.summary, "ended_by": result.ended_by}
    if args.tag:
        summary["tags"] = parse_tags(args.tag)
    if args.replay:
        summary["replay"] = replay_report(_replay(args), summary, [r.to_dict() for r in result.records])
    return summary


def warn_past_limits(spec: RunSpec, limits: Limits | None = None) -> list[str]:
    """The CLI runs what it is told, but says what the dashboard's default limits would refuse."""
    lines = [
        f"warning: {problem} — the dashboard would refuse this run; the CLI runs it"
        for problem in run_problems(spec, limits or Limits())
    ]
    for line in lines:
        print(line, file=sys.stderr)
    return lines


async def _run(args: argparse.Namespace) -> int:
    parse_tags(args.tag)  # a bad tag is refused before any load
    spec = build_spec(args)
    warn_past_limits(spec)
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
    print_extra_tables(summary, args.tables)
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
