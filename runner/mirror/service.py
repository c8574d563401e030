"""Running a mirror: listen, forward, and on stop drain the shadow and build the summary."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter_ns
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from runner.engine import Sink
from runner.mirror.capture import CaptureWriter, Privacy
from runner.mirror.live import FLUSH_S, LiveFeed
from runner.mirror.proxy import MirrorProxy
from runner.mirror.report import mirror_summary
from runner.mirror.shadow import ShadowPool
from runner.monitor import EngineMonitor
from runner.spec import GenericFormat
from runner.sse import DEFAULT_MAX_EVENT_BYTES


@dataclass(slots=True)
class MirrorConfig:
    listen: str  # HOST:PORT; port 0 picks a free one
    upstream: str  # origin, e.g. http://10.0.0.5:8000; request paths are appended unchanged
    shadow: str = ""  # origin of the endpoint under test; "" = no shadow path
    sample: float = 1.0
    shadow_headers: dict[str, str] = field(default_factory=dict)
    shadow_model: str = ""  # replaces the body's "model" in the shadow's copies
    shadow_queue: int = 1000
    shadow_concurrency: int = 64
    shadow_timeout_s: float = 120.0
    capture: str = ""  # JSONL path
    capture_prompts: Privacy = "keep"
    redact_headers: tuple[str, ...] = ()
    drain_s: float = 10.0  # after a stop: how long queued and in-flight shadow copies may finish
    seed: int = 0
    # how WebSocket sessions' frames are read (runner.spec.GenericFormat's fields); None = the
    # simulator's {"type": …} frames
    ws_format: GenericFormat | None = None
    # a WebSocket session's frames held for its measurement, at most (and the largest one frame):
    # past it the record is a protocol error; the relay is never touched
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES

    def check(self) -> None:
        """Refuse junk before anything listens: every problem at once, said plainly."""
        problems = [f"--upstream {_origin_problem(self.upstream)}"] if _origin_problem(self.upstream) else []
        if self.shadow and _origin_problem(self.shadow):
            problems.append(f"--shadow {_origin_problem(self.shadow)}")
        if not 0.0 <= self.sample <= 1.0:
            problems.append(f"--sample must be between 0 and 1, got {self.sample}")
        host, _, port = self.listen.rpartition(":")
        if not host or not port.isdigit() or int(port) > 65535:
            problems.append(f"--listen must be HOST:PORT, got {self.listen!r}")
        folder = Path(self.capture).resolve().parent
        if self.capture and not (folder.is_dir() and os.access(folder, os.W_OK)):
            problems.append(f"--capture {self.capture}: cannot write in {folder}")
        if self.shadow_queue < 1 or self.shadow_concurrency < 1 or self.shadow_timeout_s <= 0:
            problems.append("--shadow-queue, --shadow-concurrency and --shadow-timeout must be positive")
        if self.max_event_bytes < 1:
            problems.append(f"--max-event-bytes must be positive, got {self.max_event_bytes}")
        if problems:
            raise ValueError("; ".join(problems))


def _origin_problem(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"must be an http(s) origin such as http://127.0.0.1:8000, got {url!r}"
    return ""


async def serve_mirror(
    config: MirrorConfig,
    stop: asyncio.Event,
    on_listening: Callable[[str], None] | None = None,
    on_proxy: Callable[[MirrorProxy], None] | None = None,
    *,
    sink: Sink | None = None,
) -> dict[str, Any]:
    """Serve until ``stop`` is set; returns the summary (see :func:`mirror_summary`). ``on_proxy``
    gets the proxy before it listens, for a host that watches its counters or keeps its records
    (:func:`runner.mirror.report.mirror_records`). ``sink`` gets both sides' records and per-second
    stats deltas every second while the session runs, and the last ones after the shadow drained
    (:mod:`runner.mirror.live`), as the engine streams a shard's."""
    config.check()
    capture_file = Path(config.capture).open("ab") if config.capture else None  # noqa: SIM115
    pool = (
        ShadowPool(
            config.shadow,
            headers=config.shadow_headers,
            sample=config.sample,
            queue_size=config.shadow_queue,
            concurrency=config.shadow_concurrency,
            timeout_s=config.shadow_timeout_s,
            seed=config.seed,
            model=config.shadow_model,
            ws_format=config.ws_format,
            max_event_bytes=config.max_event_bytes,
        )
        if config.shadow
        else None
    )
    proxy = MirrorProxy(
        config.upstream,
        shadow=pool,
        capture=CaptureWriter(capture_file, config.capture_prompts) if capture_file else None,
        redact_headers=config.redact_headers,
        ws_format=config.ws_format,
        max_event_bytes=config.max_event_bytes,
    )
    if sink is not None:
        proxy.live = LiveFeed(proxy.t0)
        if pool is not None:
            pool.live = proxy.live
    if on_proxy is not None:
        on_proxy(proxy)
    runner = web.AppRunner(proxy.app(), access_log=None, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    monitor = EngineMonitor()
    flusher: asyncio.Task[None] | None = None
    t0 = perf_counter_ns()
    try:
        host, _, port = config.listen.rpartition(":")
        site = web.TCPSite(runner, host.strip("[]"), int(port), backlog=1024)
        await site.start()
        if on_listening is not None:
            on_listening(_bound_url(runner, host))
        monitor.start()
        if sink is not None:
            flusher = asyncio.create_task(_flush_every_second(proxy, sink, monitor, stop))
        await stop.wait()
    finally:
        duration = (perf_counter_ns() - t0) / 1e9
        await monitor.stop()
        await runner.cleanup()  # stops listening; in-flight production responses get to finish
        if pool is not None:
            await pool.close(config.drain_s)
        await proxy.measure.close()  # every record and capture line made before the summary
        if capture_file is not None:
            capture_file.close()
        if sink is not None:
            stop.set()
            if flusher is not None:
                await asyncio.gather(flusher, return_exceptions=True)
            await _flush(proxy, sink, {"engine": monitor.last_second()}, final=True)
    summary = mirror_summary(proxy, duration)
    # the mirror watching itself, as the engine does: a saturated proxy says so
    own = monitor.report(
        schedule_lags_ms=[], late_sends=0, capped_sends=0, total_sends=0, token_mismatch_pct=None
    )
    keys = (
        "saturated",
        "reasons",
        "lag_ms_p50",
        "lag_ms_p99",
        "lag_ms_max",
        "cpu_fraction_mean",
        "cpu_fraction_max",
    )
    summary["mirror"] = {"verdict": "saturated" if own["saturated"] else "ok", **{k: own[k] for k in keys}}
    return summary


async def _flush_every_second(
    proxy: MirrorProxy, sink: Sink, monitor: EngineMonitor, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), FLUSH_S)
        if not stop.is_set():
            await _flush(proxy, sink, {"engine": monitor.last_second()})


async def _flush(proxy: MirrorProxy, sink: Sink, extra: dict[str, Any], final: bool = False) -> None:
    """Never raises: a sink that fails costs the live view, not the session (the host stores every
    record again at the end)."""
    assert proxy.live is not None
    rows, delta = proxy.live.flush(perf_counter_ns(), final=final, extra=extra)
    try:
        if rows:
            await sink.on_records(rows)
        await sink.on_tick(delta)
    except Exception as exc:
        if len(proxy.production.errors) < 100:
            proxy.production.errors.append(f"live sink failed: {exc!r}")


def _bound_url(runner: web.AppRunner, host: str) -> str:
    for addr in runner.addresses:
        with contextlib.suppress(TypeError, IndexError):
            return f"http://{host}:{addr[1]}"
    return f"http://{host}"
