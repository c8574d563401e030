"""The server's own view: Prometheus ``/metrics`` scraped beside a run.

``ServerMetricsScraper`` polls one or more endpoints (e.g. P/D-separated prefill and decode workers)
every 250 ms on the run's event loop, stamps each scrape with ``perf_counter_ns()`` and parses the
exposition format with ``prometheus_client``'s parser. Known metric names of vLLM, SGLang, TGI and
llama.cpp map to common names; counters become rates (per second, or a ratio of two counters'
increases); other metrics matching a filter are kept raw under their own names. A failed scrape is
counted and reported, never raised: the run goes on.

Series are ``[[t_s, value], …]`` with ``t_s`` in seconds since the run's start on the monotonic
clock, like the client's per-second data. Several endpoints are summed (ratios from the summed
increases) and each endpoint's own series are kept under ``endpoints``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from yarl import URL

from runner.policy import PolicyResolver, TargetPolicy
from runner.summary import percentile

__all__ = [
    "DEFAULT_FILTER",
    "GAUGES",
    "RATES",
    "RATIOS",
    "ScraperThread",
    "ServerMetricsScraper",
    "monotonic_from_epoch",
    "parse_exposition",
]

INTERVAL_S = 0.25
DEFAULT_FILTER = r"^(vllm|sglang|tgi|llamacpp)[:_]"

# common name -> raw names (the first present wins); raw counter names without ``_total``
GAUGES: dict[str, tuple[str, ...]] = {
    "requests_running": (
        "vllm:num_requests_running",
        "sglang:num_running_reqs",
        "tgi_batch_current_size",
        "llamacpp:requests_processing",
    ),
    "requests_waiting": (
        "vllm:num_requests_waiting",
        "sglang:num_queue_reqs",
        "tgi_queue_size",
        "llamacpp:requests_deferred",
    ),
    "kv_cache_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "sglang:token_usage"),
    # SGLang publishes its hit rate as a gauge already
    "prefix_cache_hit_rate": ("sglang:cache_hit_rate",),
}
RATES: dict[str, tuple[str, ...]] = {
    "generation_tokens_per_s": (
        "vllm:generation_tokens",
        "sglang:generation_tokens",
        "llamacpp:tokens_predicted",
    ),
    "prompt_tokens_per_s": ("vllm:prompt_tokens", "sglang:prompt_tokens", "llamacpp:prompt_tokens"),
}
# common name -> (numerator counter, denominator counters summed); increases between two scrapes
RATIOS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "prefix_cache_hit_rate": (
        ("vllm:prefix_cache_hits", ("vllm:prefix_cache_queries",)),
        ("vllm:gpu_prefix_cache_hits", ("vllm:gpu_prefix_cache_queries",)),
        # llama.cpp's prompt_tokens counter leaves the cached ones out
        ("llamacpp:prompt_tokens_cached", ("llamacpp:prompt_tokens_cached", "llamacpp:prompt_tokens")),
    ),
    "spec_decode_acceptance_rate": (
        ("vllm:spec_decode_num_accepted_tokens", ("vllm:spec_decode_num_draft_tokens",)),
        ("llamacpp:spec_decode_num_accepted_tokens", ("llamacpp:spec_decode_num_draft_tokens",)),
    ),
}
_KNOWN = frozenset(
    [n for names in (*GAUGES.values(), *RATES.values()) for n in names]
    + [n for pairs in RATIOS.values() for num, den in pairs for n in (num, *den)]
)
_SKIP_SUFFIXES = ("_created", "_bucket")


def parse_exposition(text: str) -> tuple[dict[str, float], set[str]]:
    """Sample values summed over their labels, and which of them are counters. Counter names lose
    ``_total``; histogram buckets and ``_created`` stamps are dropped (``_sum``/``_count`` stay)."""
    values: dict[str, float] = {}
    counters: set[str] = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name
            if name.endswith(_SKIP_SUFFIXES):
                continue
            # by convention a ``_total`` sample is a counter, whatever TYPE line came (or did not)
            if family.type == "counter" or name.endswith("_total"):
                name = name.removesuffix("_total")
                counters.add(name)
            elif name.endswith(("_sum", "_count")):
                counters.add(name)
            values[name] = values.get(name, 0.0) + float(sample.value)
    return values, counters


@dataclass(slots=True)
class _Endpoint:
    url: str
    scrapes: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    counters: set[str] = field(default_factory=set)
    failures: int = 0
    last_error: str = ""


class ServerMetricsScraper:
    """``start()`` before the run, ``await stop()`` after, then ``report(t0_ns)``."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        interval_s: float = INTERVAL_S,
        keep: str = DEFAULT_FILTER,
        timeout_s: float = 2.0,
        target_policy: dict[str, list[str]] | None = None,
    ) -> None:
        self.endpoints = [_Endpoint(u) for u in urls]
        self.interval_s, self.timeout_s = interval_s, timeout_s
        self.keep = re.compile(keep) if keep else None
        # the run's target policy: metrics URLs may go only where its requests may
        self.policy = TargetPolicy.from_dict(target_policy)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        connector = aiohttp.TCPConnector(resolver=PolicyResolver(self.policy))
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            next_ns = time.perf_counter_ns()
            while True:
                await asyncio.gather(*(self._scrape(session, ep) for ep in self.endpoints))
                next_ns += int(self.interval_s * 1e9)
                await asyncio.sleep(max(0.0, (next_ns - time.perf_counter_ns()) / 1e9))

    async def _scrape(self, session: aiohttp.ClientSession, ep: _Endpoint) -> None:
        try:
            _check_literal(self.policy, ep.url)
            async with session.get(ep.url) as resp:
                text = await resp.text()
                stamp = time.perf_counter_ns()
                if resp.status != 200:
                    raise ValueError(f"HTTP {resp.status}")
            values, counters = parse_exposition(text)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a dead or odd endpoint is reported, never fails the run
            ep.failures += 1
            ep.last_error = f"{type(exc).__name__}: {exc}"[:300]
            return
        ep.counters |= counters
        ep.scrapes.append((stamp, values))

    # -- the report ------------------------------------------------------------------------------
    def report(self, t0_ns: int) -> dict[str, Any]:
        per_endpoint = {ep.url: self._series(ep.scrapes, ep.counters, t0_ns) for ep in self.endpoints}
        series = per_endpoint[self.endpoints[0].url] if len(self.endpoints) == 1 else self._summed(t0_ns)
        return {
            "series": series,
            "summary": {name: _stats(points) for name, points in series.items()},
            "interval_s": self.interval_s,
            "endpoints": [
                {
                    "url": ep.url,
                    "scrapes": len(ep.scrapes),
                    "failures": ep.failures,
                    "last_error": ep.last_error or None,
                    "series": per_endpoint[ep.url] if len(self.endpoints) > 1 else None,
                }
                for ep in self.endpoints
            ],
            "errors": [
                f"{ep.url}: {ep.failures} failed scrape(s), last {ep.last_error}"
                for ep in self.endpoints
                if ep.failures
            ],
        }

    def _summed(self, t0_ns: int) -> dict[str, list[list[float]]]:
        """Endpoints summed scrape by scrape (the i-th scrapes of each were taken together)."""
        usable = [ep for ep in self.endpoints if ep.scrapes]
        if not usable:
            return {}
        n = min(len(ep.scrapes) for ep in usable)
        merged: list[tuple[int, dict[str, float]]] = []
        for i in range(n):
            values: dict[str, float] = {}
            for ep in usable:
                for k, v in ep.scrapes[i][1].items():
                    values[k] = values.get(k, 0.0) + v
            merged.append((max(ep.scrapes[i][0] for ep in usable), values))
        counters = set().union(*(ep.counters for ep in usable))
        return self._series(merged, counters, t0_ns)

    def _series(
        self, scrapes: list[tuple[int, dict[str, float]]], counters: set[str], t0_ns: int
    ) -> dict[str, list[list[float]]]:
        out: dict[str, list[list[float]]] = {}
        for (t_prev, prev), (t, cur) in itertools.pairwise(scrapes):
            t_s = round((t - t0_ns) / 1e9, 3)
            dt = (t - t_prev) / 1e9
            for name, value in _point(prev, cur, dt, counters, self.keep).items():
                out.setdefault(name, []).append([t_s, value])
        if scrapes:  # gauges have a value at the first scrape too
            t_s = round((scrapes[0][0] - t0_ns) / 1e9, 3)
            for name, raw in GAUGES.items():
                first = _first(scrapes[0][1], raw)
                if first is not None and name in out:
                    out[name].insert(0, [t_s, first])
        return out


def _check_literal(policy: TargetPolicy, url: str) -> None:
    """Addresses written as IP literals never reach the resolver: checked here, like the engine does."""
    parsed = URL(url)
    host = (parsed.host or "").strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return
    policy.check(host, host, parsed.port or 0)


class ScraperThread:
    """A scraper on its own event loop in a thread, beside an engine whose loop it cannot join (a
    Celery shard's ``run_blocking``): ``start()``, then ``stop()`` and ``report(t0_ns)``."""

    def __init__(self, urls: Sequence[str], **kwargs: Any) -> None:
        self.scraper = ServerMetricsScraper(urls, **kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="server-metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=5)

    async def _start(self) -> None:
        self.scraper.start()

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.scraper.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def report(self, t0_ns: int) -> dict[str, Any]:
        return self.scraper.report(t0_ns)

    def gauges_since(self, marks: list[int]) -> list[tuple[float, dict[str, float]]]:
        """The gauges (running, waiting, KV use; summed over endpoints) of every scrape taken since
        the last call, each stamped in wall-clock seconds, for a live view while the run goes on.
        ``marks`` (one index per endpoint, start with ``[]``) is updated in place."""
        marks.extend([0] * (len(self.scraper.endpoints) - len(marks)))
        now_ns, now_epoch = time.perf_counter_ns(), time.time()
        out: dict[int, tuple[float, dict[str, float]]] = {}
        for i, ep in enumerate(self.scraper.endpoints):
            fresh = ep.scrapes[marks[i] :]  # appended by the scraper's thread; a slice is a snapshot
            marks[i] += len(fresh)
            for k, (stamp, values) in enumerate(fresh):
                summed = out.setdefault(k, (now_epoch - (now_ns - stamp) / 1e9, {}))[1]
                for name, raw in GAUGES.items():
                    value = _first(values, raw)
                    if value is not None:
                        summed[name] = summed.get(name, 0.0) + value
        return [out[k] for k in sorted(out)]


def monotonic_from_epoch(epoch: float) -> int:
    """The ``perf_counter_ns`` instant of a recent wall-clock time (a run's start as its records state
    it); good to a millisecond or so, the clocks being read together now."""
    return time.perf_counter_ns() + int((epoch - time.time()) * 1e9)


def _first(values: dict[str, float], names: Iterable[str]) -> float | None:
    return next((values[n] for n in names if n in values), None)


def _increase(prev: dict[str, float], cur: dict[str, float], name: str) -> float | None:
    if name not in prev or name not in cur or cur[name] < prev[name]:  # absent, or reset
        return None
    return cur[name] - prev[name]


def _point(
    prev: dict[str, float], cur: dict[str, float], dt: float, counters: set[str], keep: re.Pattern[str] | None
) -> dict[str, float]:
    """Every common and kept raw value at one scrape (rates over the interval since ``prev``)."""
    out: dict[str, float] = {}
    for name, raw in GAUGES.items():
        value = _first(cur, raw)
        if value is not None:
            out[name] = value
    for name, raw in RATES.items():
        source = next((n for n in raw if n in cur), None)
        inc = _increase(prev, cur, source) if source else None
        if inc is not None and dt > 0:
            out[name] = inc / dt
    for name, pairs in RATIOS.items():
        for num, den in pairs:
            hit, total = _increase(prev, cur, num), [_increase(prev, cur, d) for d in den]
            if hit is not None and all(x is not None for x in total):
                whole = sum(x for x in total if x is not None)
                if whole > 0:
                    out[name] = hit / whole
                break
    if keep is not None:
        for name, value in cur.items():
            if name in _KNOWN or not keep.search(name):
                continue
            if name in counters:
                inc = _increase(prev, cur, name)
                if inc is not None and dt > 0:
                    out[name + "_per_s"] = inc / dt
            else:
                out[name] = value
    return out


def _stats(points: list[list[float]]) -> dict[str, float | None]:
    xs = sorted(v for _, v in points)
    if not xs:
        return {"p50": None, "max": None}
    return {"p50": percentile(xs, 50), "max": xs[-1]}
