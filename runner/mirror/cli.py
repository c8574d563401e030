"""``python -m runner mirror``: the flags, and a run that writes the summary on SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from runner.mirror.capture import PRIVACY
from runner.mirror.service import MirrorConfig, serve_mirror
from runner.spec import GenericFormat
from runner.sse import DEFAULT_MAX_EVENT_BYTES


def _header(text: str) -> tuple[str, str]:
    """``'Name: value'``; a value ``env:VAR`` is read from the environment, so a key stays out of ``ps``."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    value = value.strip()
    if value.startswith("env:"):
        var = value[4:]
        if var not in os.environ:
            raise argparse.ArgumentTypeError(f"{name.strip()}: environment variable {var} is not set")
        value = os.environ[var]
    return name.strip(), value


def _ws_format(text: str) -> GenericFormat:
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--ws-format is not JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise argparse.ArgumentTypeError("--ws-format must be a JSON object")
    known = set(GenericFormat.__dataclass_fields__)
    unknown = sorted(set(fields) - known)
    if unknown:
        raise argparse.ArgumentTypeError(f"--ws-format: unknown fields {unknown}; known: {sorted(known)}")
    return GenericFormat(**fields)


def add_parser(sub: Any) -> None:
    m = sub.add_parser("mirror", help="mirror live traffic to a shadow endpoint; measure and capture it")
    m.add_argument("--listen", required=True, help="HOST:PORT to accept traffic on (port 0 = any free)")
    m.add_argument("--upstream", required=True, help="production origin, e.g. http://10.0.0.5:8000")
    m.add_argument("--shadow", default="", help="origin of the endpoint under test (omit: capture only)")
    m.add_argument("--sample", type=float, default=1.0, help="share of requests copied to the shadow")
    m.add_argument(
        "--shadow-header",
        type=_header,
        action="append",
        default=[],
        help="'Name: value' sent to the shadow only, e.g. its own Authorization (repeatable); "
        "'Name: env:VAR' reads the value from the environment",
    )
    m.add_argument("--shadow-model", default="", help="model name the shadow's copies ask for instead")
    m.add_argument("--shadow-queue", type=int, default=1000, help="copies waiting; past it they are dropped")
    m.add_argument("--shadow-concurrency", type=int, default=64, help="shadow requests in flight at most")
    m.add_argument("--shadow-timeout", type=float, default=120.0, help="total seconds per shadow request")
    m.add_argument("--drain", type=float, default=10.0, help="seconds the shadow may finish after a stop")
    m.add_argument("--capture", default="", help="append one JSONL line per request to this file")
    m.add_argument(
        "--capture-prompts", choices=PRIVACY, default="keep", help="keep, hash or drop prompt/answer text"
    )
    m.add_argument(
        "--redact-header", action="append", default=[], help="also keep this header out of captures"
    )
    m.add_argument("--seed", type=int, default=0, help="seed for --sample")
    m.add_argument(
        "--ws-format",
        type=_ws_format,
        default=None,
        help="JSON object of generic-ws fields (kind_path, kind_map, answer_path…) to read WebSocket "
        "sessions' frames by; default: the simulator's {\"type\": …} frames",
    )
    m.add_argument(
        "--max-event-bytes",
        type=int,
        default=DEFAULT_MAX_EVENT_BYTES,
        help="a WebSocket session's frames held for its measurement, at most (default 1 MiB): past it "
        "the session is measured as a protocol error; the caller's relay is never touched",
    )
    m.add_argument("--json", dest="json_out", help="write the summary JSON here on SIGINT/SIGTERM")


def config_from_args(args: argparse.Namespace) -> MirrorConfig:
    return MirrorConfig(
        listen=args.listen,
        upstream=args.upstream,
        shadow=args.shadow,
        sample=args.sample,
        shadow_headers=dict(args.shadow_header),
        shadow_model=args.shadow_model,
        shadow_queue=args.shadow_queue,
        shadow_concurrency=args.shadow_concurrency,
        shadow_timeout_s=args.shadow_timeout,
        capture=args.capture,
        capture_prompts=args.capture_prompts,
        redact_headers=tuple(args.redact_header),
        drain_s=args.drain,
        seed=args.seed,
        ws_format=args.ws_format,
        max_event_bytes=args.max_event_bytes,
    )


async def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    try:
        config.check()
    except ValueError as exc:
        print(f"mirror: {exc}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def listening(url: str) -> None:
        print(f"llmperf-mirror listening on {url}", flush=True)

    try:
        summary = await serve_mirror(config, stop, listening)
    except OSError as exc:  # e.g. the port is taken
        print(f"mirror: cannot start on {config.listen}: {exc}", file=sys.stderr)
        return 2
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2))
    print_summary(summary)
    return 0


def _f(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def print_summary(s: dict[str, Any]) -> None:
    o, m = s["overhead_ms"], s["mirror"]
    print(f"requests: {s['requests']}  overhead ms p50 {_f(o['p50'])} p99 {_f(o['p99'])}")
    print(
        f"mirror: {m['verdict']} (loop lag p99 {_f(m['lag_ms_p99'])} ms, CPU {_f(m['cpu_fraction_mean'])} of a core)"
        + ("; " + "; ".join(m["reasons"]) if m["reasons"] else "")
    )
    if s["shadow"] is not None:
        c = s["shadow"]
        print(
            f"shadow: sent {c['sent']} ok {c['succeeded']} failed {c['failed']} dropped {c['dropped']}"
            + (f" {c['failures']}" if c["failures"] else "")
        )
        p = s["paired"]
        print(
            f"paired: {p['pairs']}  TTFT diff p50 {_f(p['ttft_ms_diff']['p50'])} ms  "
            f"tokens/s diff p50 {_f(p['tokens_per_s_diff']['p50'])}  "
            f"ROUGE-L mean {_f(p['answer_rouge_l']['mean'])}"
        )
