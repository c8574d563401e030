"""What a shard runs besides (or instead of) plain load: the capacity search (a capacity run has one
shard, which drives the search level by level), the KV-cache reuse passes (one shard: every prompt
cold, then warm) and the server's metrics, scraped by shard 0 only —
one scraper per run — through the run's target policy. A failed scrape is reported in
``summary["server_metrics"]["errors"]`` and never fails the shard."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from benchmarks.live.server import per_second
from benchmarks.models import Run
from runner import (
    LimitExceeded,
    Limits,
    RunResult,
    RunSpec,
    ScraperThread,
    attach_server_view,
    capacity_blocking,
    kv_reuse_blocking,
    run_blocking,
    run_problems,
)

log = logging.getLogger(__name__)


def shard_run_engine(
    *,
    run: Run,
    shard_index: int,
    spec: RunSpec,
    sink: Any,
    should_cancel: Callable[[], bool],
    sink_command: list[str] | None = None,
    sink_env: dict[str, str] | None = None,
    limits: Limits | None = None,
) -> RunResult:
    """Plain load goes through the writer process when ``sink_command`` is given; shard 0 of a run
    that scrapes server metrics, a capacity search and a KV-cache reuse run keep the in-process sink
    they decorate. With ``limits`` a spec past them raises ``LimitExceeded`` before anything is sent."""
    if limits is not None and (problems := run_problems(spec, limits)):
        raise LimitExceeded(problems)
    urls = (run.spec.get("server_metrics") or []) if shard_index == 0 else []
    scraper = _scraper_start(urls, spec)
    if scraper is not None:
        sink = LiveServerSink(sink, scraper)
    capacity = run.spec.get("capacity")
    try:
        if capacity is not None and shard_index == 0:
            result = capacity_blocking(spec, capacity, sink=sink, should_cancel=should_cancel)
        elif run.spec.get("kv_reuse") is not None and shard_index == 0:
            result = kv_reuse_blocking(spec, sink=sink, should_cancel=should_cancel)
        elif scraper is None and sink_command:
            result = run_blocking(
                spec, sink_command=sink_command, sink_env=sink_env, should_cancel=should_cancel, limits=limits
            )
        else:
            result = run_blocking(spec, sink=sink, should_cancel=should_cancel, limits=limits)
    finally:
        if scraper is not None:
            scraper.stop()
    if scraper is not None:
        result.summary["server_metrics"] = scraper.report(result.t0_ns)
        attach_server_view(result.summary.get("capacity"), result.summary["server_metrics"])
    elif urls:
        result.summary["server_metrics"] = _failed_report(urls)
    return result


class LiveServerSink:
    """Shard 0's sink, adding the server's gauges since the last tick to each delta (per second of the
    run's clock, which its first records state: wall-clock send − scheduled offset − lag)."""

    def __init__(self, inner: Any, scraper: ScraperThread) -> None:
        self.inner, self.scraper = inner, scraper
        self.t0_epoch: float | None = None
        self.marks: list[int] = []

    def on_records(self, batch: list[dict[str, Any]]) -> None:
        if self.t0_epoch is None and batch:
            r = batch[0]
            lag_s = float(r.get("schedule_lag_ms") or 0.0) / 1000
            self.t0_epoch = float(r["started_epoch"]) - float(r.get("scheduled_s") or 0.0) - lag_s
        self.inner.on_records(batch)

    def on_tick(self, delta: dict[str, Any]) -> None:
        if self.t0_epoch is not None:
            server = per_second(self.scraper.gauges_since(self.marks), self.t0_epoch)
            if server:
                delta = {**delta, "server": server}
        self.inner.on_tick(delta)


def _scraper_start(urls: list[str], spec: RunSpec) -> ScraperThread | None:
    if not urls:
        return None
    try:
        scraper = ScraperThread(urls, target_policy=spec.target_policy)
        scraper.start()
    except Exception:  # the load matters more than the server's view: go on without it
        log.exception("server metrics scraper did not start")
        return None
    return scraper


def _failed_report(urls: list[str]) -> dict[str, Any]:
    return {
        "series": {},
        "summary": {},
        "endpoints": [{"url": u, "scrapes": 0, "failures": 0, "last_error": None} for u in urls],
        "errors": ["the scraper did not start (see the worker's log)"],
    }
