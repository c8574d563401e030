"""The CLI's studies — runs made of several runs, or with company: a capacity search
(``--find-capacity``), repetitions with confidence intervals (``--repeat``), the KV-cache reuse
comparison (``--kv-cache-reuse``), and the server's own metrics scraped beside any of them
(``--server-metrics``). ``runner.cli`` adds these flags and hands over when one is given."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from runner import kv_reuse, repeat
from runner.capacity import (
    CapacityConfig,
    attach_server_view,
    find_capacity,
    find_capacity_per_bucket,
    sentence,
)
from runner.engine import RunResult, run
from runner.server_metrics import DEFAULT_FILTER, ServerMetricsScraper, monotonic_from_epoch
from runner.spec import RunSpec


def add_arguments(r: argparse.ArgumentParser) -> None:
    g = r.add_argument_group("capacity at SLO")
    g.add_argument("--find-capacity", action="store_true", help="search the highest load meeting every SLO")
    g.add_argument("--capacity-mode", choices=("rate", "users"), default="rate")
    g.add_argument("--rate-min", type=float, default=1.0, help="lowest level (req/s, or users)")
    g.add_argument("--rate-max", type=float, default=256.0, help="highest level (req/s, or users)")
    g.add_argument("--slo-e2e-ms", type=float, help="end-to-end objective (off unless given)")
    g.add_argument("--slo-attainment", type=float, default=0.99, help="share of requests meeting every SLO")
    g.add_argument(
        "--level-min-requests", type=int, default=200, help="requests in each level's steady window"
    )
    g.add_argument("--level-min-s", type=float, default=10.0, help="each level's steady window, at least")
    g.add_argument("--level-warmup", type=float, default=3.0, help="seconds trimmed from each level's start")
    g.add_argument(
        "--capacity-tolerance", type=float, default=0.05, help="bisect until the bracket is this narrow"
    )
    g.add_argument("--capacity-per-bucket", action="store_true", help="one search per input-token bucket")
    g = r.add_argument_group("server metrics, repeats, KV-cache reuse")
    g.add_argument(
        "--server-metrics",
        action="append",
        default=[],
        metavar="URL",
        help="Prometheus endpoint scraped every 250 ms (repeatable: prefill and decode workers)",
    )
    g.add_argument(
        "--server-metrics-filter", default=DEFAULT_FILTER, help="regex of unknown metrics kept raw"
    )
    g.add_argument("--repeat", type=int, default=1, help="run the same plan N times; mean and 95%% interval")
    g.add_argument(
        "--kv-cache-reuse", action="store_true", help="cold prefixes, then the same prefixes warm: TTFT gain"
    )


def wanted(args: argparse.Namespace) -> bool:
    return bool(args.find_capacity or args.server_metrics or args.repeat > 1 or args.kv_cache_reuse)


def capacity_config(args: argparse.Namespace) -> CapacityConfig:
    try:
        return _capacity_config(args)
    except ValueError as exc:
        raise SystemExit(f"capacity search: {exc}") from None


def _capacity_config(args: argparse.Namespace) -> CapacityConfig:
    return CapacityConfig(
        mode=args.capacity_mode,
        load_min=args.rate_min,
        load_max=args.rate_max,
        attainment=args.slo_attainment,
        level_min_requests=args.level_min_requests,
        min_level_s=args.level_min_s,
        warmup_s=args.level_warmup,
        tolerance=args.capacity_tolerance,
    )


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _level_line(level: dict[str, Any]) -> None:
    att = level["attainment"]
    _say(
        f"  level {level['load']:>7.2f}: sent {level['sent_rps']:.2f} req/s, "
        f"{level['succeeded_qpm']:.0f} QPM ok, attainment {'-' if att is None else f'{att * 100:.1f}%'}, "
        f"TTFT p99 {_ms(level['ttft_p99'])} → {'pass' if level['slo_pass'] else 'FAIL'}"
        + (f" ({'; '.join(level['reasons'])})" if level["reasons"] else "")
    )


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f} ms"


async def study(
    args: argparse.Namespace, spec: RunSpec, cancel: asyncio.Event, sink_factory: Callable[[str | None], Any]
) -> tuple[dict[str, Any], list[str]]:
    """The summary for the study ``args`` asks for, and the lines to print after the table."""
    studies = [
        name
        for name, on in (
            ("--find-capacity", args.find_capacity),
            ("--kv-cache-reuse", args.kv_cache_reuse),
            ("--repeat", args.repeat > 1),
        )
        if on
    ]
    if len(studies) > 1:
        raise SystemExit(f"{' and '.join(studies)} cannot be combined: one study per command")
    if args.slo_e2e_ms is not None:
        spec.slo.e2e_ms = args.slo_e2e_ms
    scraper = None
    if args.server_metrics:
        scraper = ServerMetricsScraper(args.server_metrics, keep=args.server_metrics_filter)
        scraper.start()
    t0 = time.perf_counter_ns()
    try:
        summary, lines, run_t0 = await _dispatch(args, spec, cancel, sink_factory)
    finally:
        if scraper is not None:
            await scraper.stop()
    if scraper is not None:
        start = run_t0 if run_t0 is not None else t0
        report = scraper.report(start)
        summary["server_metrics"] = report
        attach_server_view(summary.get("capacity"), report)
        lines += [f"server metrics: {e}" for e in report["errors"]]
        lines += [_server_line(report)]
    return summary, lines


async def _dispatch(
    args: argparse.Namespace, spec: RunSpec, cancel: asyncio.Event, sink_factory: Callable[[str | None], Any]
) -> tuple[dict[str, Any], list[str], int | None]:
    if args.find_capacity:
        found, said = await _capacity(args, spec, cancel)
        return found, said, None
    if args.kv_cache_reuse:
        block = await kv_reuse.compare(spec, cancel=cancel)
        return {"kv_cache_reuse": block}, kv_reuse.lines(block), None
    runs: list[RunResult] = []
    for i in range(max(1, args.repeat)):
        if cancel.is_set():
            break
        if args.repeat > 1:
            _say(f"repetition {i + 1} of {args.repeat}")
        runs.append(await _one(spec, sink_factory(_records_path(args.records, i)), cancel))
    if not runs:
        return {"ended_by": "cancel"}, [], None
    last = runs[-1]
    summary = {**last.summary, "ended_by": last.ended_by}
    lines: list[str] = []
    starts = [_run_start_ns(r) for r in runs]
    if args.repeat > 1:
        summary["repeat"] = repeat.combine([r.summary for r in runs])
        if starts[0] is not None:  # where each repetition begins on the server metrics' time axis
            summary["repeat"]["starts_s"] = [(t - starts[0]) / 1e9 if t else None for t in starts]
        lines += repeat.lines(summary["repeat"])
    return summary, lines, starts[0]


def _records_path(path: str | None, repetition: int) -> str | None:
    """records.jsonl for the first repetition, records.2.jsonl for the second, …"""
    if path is None or repetition == 0:
        return path
    p = Path(path)
    return str(p.with_name(f"{p.stem}.{repetition + 1}{p.suffix}"))


async def _one(spec: RunSpec, sink: Any, cancel: asyncio.Event) -> RunResult:
    try:
        return await run(spec, sink=sink, cancel=cancel)
    finally:
        if hasattr(sink, "close"):
            sink.close()


def _run_start_ns(result: RunResult) -> int | None:
    """The engine's clock start on this process's monotonic clock, from its records: each states
    its send in wall clock and in seconds since the start (the engine does not publish its t0)."""
    stamps = [r.started_epoch - r.scheduled_s - r.schedule_lag_ms / 1000 for r in result.records]
    return monotonic_from_epoch(statistics.median(stamps)) if stamps else None


async def _capacity(
    args: argparse.Namespace, spec: RunSpec, cancel: asyncio.Event
) -> tuple[dict[str, Any], list[str]]:
    config = capacity_config(args)
    origin = time.perf_counter_ns()
    runner = _timed_runner(origin)
    slo = ", ".join(f"{k} {v:g}" for k, v in dataclasses.asdict(spec.slo).items() if v is not None)
    _say(f"capacity search ({config.mode}): SLO {slo}; attainment ≥ {config.attainment:g}")
    if args.capacity_per_bucket:
        block = await find_capacity_per_bucket(
            spec, config, run_level=runner, cancel=cancel, progress=_level_line
        )
        lines = [sentence(b) for b in block["buckets"]]
    else:
        block = await find_capacity(spec, config, run_level=runner, cancel=cancel, progress=_level_line)
        lines = [sentence(block)]
    return {"capacity": block}, lines


def _timed_runner(origin: int) -> Callable[[RunSpec, Any, asyncio.Event], Awaitable[RunResult]]:
    """Runs a level and stamps its load window in seconds since the search began."""

    async def runner(level_spec: RunSpec, sink: Any, stop: asyncio.Event) -> RunResult:
        start = time.perf_counter_ns()
        result = await run(level_spec, sink=sink, cancel=stop)
        load_s = result.summary.get("load_duration_s") or 0.0
        result.summary["t_s"] = [(start - origin) / 1e9, (start - origin) / 1e9 + load_s]
        return result

    return runner


def _server_line(report: dict[str, Any]) -> str:
    s = report["summary"]
    parts = [f"{name} p50 {v['p50']:.3g} max {v['max']:.3g}" for name, v in s.items() if v["p50"] is not None]
    return "server: " + ("; ".join(parts) if parts else "no metrics read")
