"""Capacity at SLO: the highest load whose steady state meets every objective.

The search drives the public engine one level at a time (one ``run()`` per level): open-loop rates
(or closed-loop users) that double from ``load_min`` until a level fails, then bisect between the
last passing and the first failing level, then hold the best passing load for one more window to
confirm it. A level is judged on its steady window (the warm-up trimmed, and the trim stated):

- attainment — the share of requests that met every objective at once (TTFT, tokens/s, E2E), every
  failed request (a 429 included) counting as a miss — must reach ``attainment``;
- the queue must be steady: neither in-flight requests nor schedule lag grow across the window
  (past capacity an open loop's queue grows without bound, however good the first seconds look);
- a level that is clearly over-saturated (TTFT and in-flight both keep rising, TTFT past its
  objective) is stopped early and fails.

A level where the client itself was saturated (engine verdict ``client-bound``) is reported, and the
result is then marked untrusted.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import itertools
import statistics
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from runner.engine import RunResult, run
from runner.postprocess import count_prompt, load_tokenizer
from runner.records import Outcome, RequestRecord
from runner.spec import ProfileSpec, Prompt, RunSpec, Slo
from runner.summary import bucket_bounds, bucket_label, percentile

__all__ = [
    "CapacityConfig",
    "LevelRunner",
    "attach_server_view",
    "find_capacity",
    "find_capacity_per_bucket",
    "in_flight_series",
    "judge_level",
    "sentence",
]

LevelRunner = Callable[[RunSpec, Any, asyncio.Event], Awaitable[RunResult]]
OBJECTIVES = ("ttft", "tokens_per_s", "e2e", "errors")


@dataclass(slots=True)
class CapacityConfig:
    mode: Literal["rate", "users"] = "rate"
    load_min: float = 1.0  # requests/s (rate) or users
    load_max: float = 256.0
    attainment: float = 0.99
    level_min_requests: int = 200  # in the steady window
    min_level_s: float = 10.0  # steady window at least this long
    max_level_s: float = 300.0
    warmup_s: float = 3.0  # trimmed from the start of every level
    tolerance: float = 0.05  # bisection stops when the bracket is this narrow (relative)
    max_levels: int = 14
    confirm: bool = True

    def __post_init__(self) -> None:
        problems = [
            msg
            for ok, msg in (
                (0 < self.load_min <= self.load_max, "need 0 < load_min <= load_max"),
                (0 < self.attainment <= 1, "attainment must be in (0, 1]"),
                (self.level_min_requests >= 1, "level_min_requests must be >= 1"),
                (self.warmup_s >= 0 and self.min_level_s > 0, "warmup_s >= 0 and min_level_s > 0"),
                (self.tolerance > 0, "tolerance must be > 0"),
            )
            if not ok
        ]
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(slots=True)
class _Search:
    levels: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    first_fail: dict[str, Any] | None = None
    confirmed: bool | None = None


# -- judging one level ------------------------------------------------------------------------------


def _misses(r: RequestRecord, slo: Slo) -> list[str]:
    """Which objectives this request missed (a failed request misses ``errors``)."""
    if not r.ok:
        return ["errors"]
    out = []
    if slo.ttft_ms is not None and (r.ttft_ms is None or r.ttft_ms > slo.ttft_ms):
        out.append("ttft")
    if slo.tokens_per_s is not None and (r.tokens_per_s is None or r.tokens_per_s < slo.tokens_per_s):
        out.append("tokens_per_s")
    if slo.e2e_ms is not None and (r.e2e_ms is None or r.e2e_ms > slo.e2e_ms):
        out.append("e2e")
    return out


def _sent_s(r: RequestRecord) -> float:
    return r.scheduled_s + r.schedule_lag_ms / 1000.0


def in_flight_series(records: Sequence[RequestRecord], start_s: float, end_s: float) -> list[float]:
    """Requests in flight at each whole second in [start_s, end_s), from the records' send and end
    times (seconds since the level's start)."""
    starts = sorted(_sent_s(r) for r in records)
    ends = sorted(r.scheduled_s + (r.e2e_ms or 0.0) / 1000.0 for r in records)
    points = [start_s + k for k in range(int(end_s - start_s))]
    return [float(bisect.bisect_right(starts, t) - bisect.bisect_right(ends, t)) for t in points]


def _growing(series: Sequence[float], floor: float) -> bool:
    """A clear upward trend: the least-squares line rises over the window by more than ``floor``
    and by more than half the window's mean (a steady queue only fluctuates around its mean)."""
    n = len(series)
    if n < 4:
        return False
    mean_x, mean_y = (n - 1) / 2, statistics.fmean(series)
    cov = sum((i - mean_x) * (y - mean_y) for i, y in enumerate(series))
    slope = cov / sum((i - mean_x) ** 2 for i in range(n))
    rise = slope * (n - 1)
    return rise > floor and rise > 0.5 * mean_y


def _by_second(
    window: Sequence[RequestRecord],
    start_s: float,
    end_s: float,
    value: Callable[[RequestRecord], float | None],
) -> list[float]:
    """The mean of ``value`` over the requests scheduled in each second (a second without any
    repeats the last mean)."""
    seconds = int(end_s - start_s)
    sums, counts = [0.0] * seconds, [0] * seconds
    for r in window:
        k = int(r.scheduled_s - start_s)
        v = value(r)
        if 0 <= k < seconds and v is not None:
            sums[k] += v
            counts[k] += 1
    out: list[float] = []
    for total, n in zip(sums, counts, strict=True):
        out.append(total / n if n else (out[-1] if out else 0.0))
    return out


def _p(values: Sequence[float | None], q: float) -> float | None:
    xs = sorted(v for v in values if v is not None)
    return percentile(xs, q) if xs else None


def judge_level(
    records: Sequence[RequestRecord],
    *,
    load: float,
    load_s: float,
    slo: Slo,
    config: CapacityConfig,
    engine: dict[str, Any] | None = None,
    stopped_early: bool = False,
) -> dict[str, Any]:
    """One level's verdict from its records. ``load_s`` is how long the load was applied."""
    start, end = config.warmup_s, max(config.warmup_s, load_s)
    sent = [r for r in records if start <= r.scheduled_s < end]
    # requests the search itself cancelled (a level stopped early) were sent, but are not judged
    window = [r for r in sent if r.outcome != Outcome.CANCELLED.value]
    span = max(end - start, 1e-9)
    ok = [r for r in window if r.ok]
    missed = [_misses(r, slo) for r in window]
    meets = sum(1 for m in missed if not m)
    n = len(window)
    attainment = meets / n if n else None
    in_flight = in_flight_series(records, start, end)
    # a queue that grows makes both in-flight and TTFT climb; either alone is noise of a short window
    ttft_floor = 0.1 * slo.ttft_ms if slo.ttft_ms else 50.0
    queue_growing = _growing(in_flight, floor=2.0 + 2.0 * statistics.fmean(in_flight or [0.0]) ** 0.5) and (
        _growing(_by_second(window, start, end, lambda r: r.ttft_ms), floor=ttft_floor)
    )
    lag_growing = _growing(_by_second(window, start, end, lambda r: r.schedule_lag_ms), floor=20.0)
    enough = n >= config.level_min_requests
    verdict = (engine or {}).get("verdict")
    level = {
        "load": load,
        "sent_rps": len(sent) / span,
        "succeeded_qpm": len(ok) * 60.0 / span,
        "attainment": attainment,
        "slo_pass": False,
        "ttft_p99": _p([r.ttft_ms for r in ok], 99),
        "tokens_per_s_p50": _p([r.tokens_per_s for r in ok], 50),
        "success": len(ok) / n if n else None,
        "engine_verdict": verdict,
        "engine_reasons": (engine or {}).get("reasons") or [],
        "requests": n,
        "rate_limited": sum(1 for r in window if r.http_status == 429),
        "misses": {k: sum(1 for m in missed if k in m) / n if n else 0.0 for k in OBJECTIVES},
        "in_flight_mean": statistics.fmean(in_flight) if in_flight else None,
        "queue_steady": not (queue_growing or lag_growing),
        "enough_requests": enough,
        "stopped_early": stopped_early,
        "window_s": [start, end],
    }
    reasons = []
    if stopped_early:
        reasons.append("over-saturated: TTFT and in-flight kept rising (stopped early)")
    if attainment is None or attainment < config.attainment:
        reasons.append(f"attainment {_pct(attainment)} < {_pct(config.attainment)}")
    if queue_growing:
        reasons.append("queue growing (in-flight)")
    if lag_growing:
        reasons.append("schedule lag growing")
    if not enough and not stopped_early:
        reasons.append(f"{n} requests in the steady window < {config.level_min_requests}")
    level["slo_pass"] = not reasons
    level["reasons"] = reasons
    return level


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def limiting_slo(level: dict[str, Any] | None) -> str | None:
    """The objective most missed at a failing level (``queue`` if it failed only on a growing queue)."""
    if level is None:
        return None
    misses = level["misses"]
    worst = max(OBJECTIVES, key=lambda k: misses.get(k, 0.0))
    if misses.get(worst, 0.0) > 0:
        return worst
    return "queue" if not level["queue_steady"] else None


# -- watching a level -------------------------------------------------------------------------------


class SaturationWatch:
    """A sink that stops a level once it is clearly over-saturated: over ``window`` ticks after the
    warm-up, the in-flight count and the median TTFT of the requests finished in each tick both kept
    rising, and TTFT is past its objective. Forwards everything to ``inner`` if given."""

    def __init__(self, cancel: asyncio.Event, slo: Slo, warmup_s: float, inner: Any = None, window: int = 5):
        self.cancel, self.slo, self.warmup_s, self.inner, self.window = cancel, slo, warmup_s, inner, window
        self.ticks = 0
        self.ttft: list[float] = []
        self.in_flight: list[float] = []
        self._batch_ttft: list[float] = []
        self.tripped = False

    async def on_records(self, batch: list[dict[str, Any]]) -> None:
        self._batch_ttft.extend(r["ttft_ms"] for r in batch if r.get("ttft_ms") is not None)
        if self.inner is not None:
            await self.inner.on_records(batch)

    async def on_tick(self, delta: dict[str, Any]) -> None:
        self.ticks += 1
        engine = delta.get("engine") or {}
        if not delta.get("final") and self.ticks > self.warmup_s and "in_flight" in engine:
            ttfts = sorted(self._batch_ttft)
            self.ttft.append(ttfts[len(ttfts) // 2] if ttfts else (self.ttft[-1] if self.ttft else 0.0))
            self.in_flight.append(float(engine["in_flight"]))
            if self._saturated():
                self.tripped = True
                self.cancel.set()
        self._batch_ttft = []
        if self.inner is not None:
            await self.inner.on_tick(delta)

    def _saturated(self) -> bool:
        k = self.window
        if len(self.ttft) < k:
            return False
        ttft, flight = self.ttft[-k:], self.in_flight[-k:]

        def rising(xs: list[float], floor: float) -> bool:
            steps = sum(1 for a, b in itertools.pairwise(xs) if b > a)
            return steps >= k - 2 and xs[-1] > xs[0] * 1.2 + floor

        over = self.slo.ttft_ms is None or ttft[-1] > self.slo.ttft_ms
        return over and rising(ttft, 10.0) and rising(flight, 2.0)


# -- the search -------------------------------------------------------------------------------------


def _level_spec(spec: RunSpec, load: float, config: CapacityConfig, steady_s: float, draw: int) -> RunSpec:
    level = RunSpec.from_dict(spec.to_dict())
    base = spec.profile
    if config.mode == "rate":
        level.profile = ProfileSpec(kind="rate", rate=load, rate_unit="qps")
    else:
        users = max(1, round(load))
        level.profile = ProfileSpec(kind="users", users=users, spawn_rate=float(users))  # all in 1 s
    # every level its own arrival draws: one seed for all would repeat one lucky or unlucky
    # sequence, and the confirming window must not replay the window it confirms
    level.profile.seed, level.profile.arrival = base.seed + 1009 * draw, base.arrival
    level.profile.max_concurrency = base.max_concurrency
    level.duration_s = config.warmup_s + steady_s
    level.max_requests = None
    return level


def _steady_s(load: float, config: CapacityConfig, per_unit_rps: float | None) -> float:
    """Long enough for ``level_min_requests`` in the steady window, with room for a Poisson count
    three standard deviations short."""
    rps = load if config.mode == "rate" else (per_unit_rps or 0.0) * load
    n = config.level_min_requests
    need = (n + 3 * n**0.5 + 3) / rps if rps > 0 else config.min_level_s
    return min(config.max_level_s, max(config.min_level_s, need))


async def _measure(
    spec: RunSpec,
    load: float,
    config: CapacityConfig,
    run_level: LevelRunner,
    cancel: asyncio.Event,
    per_unit_rps: float | None,
    progress: Callable[[dict[str, Any]], None] | None,
    draw: int,
) -> dict[str, Any]:
    steady = _steady_s(load, config, per_unit_rps)
    level_spec = _level_spec(spec, load, config, steady, draw)
    stop = asyncio.Event()
    relay = asyncio.create_task(_relay(cancel, stop))
    watch = SaturationWatch(stop, spec.slo, config.warmup_s)
    try:
        result = await run_level(level_spec, watch, stop)
    finally:
        relay.cancel()
    load_s = result.summary.get("load_duration_s") or (config.warmup_s + steady)
    level = judge_level(
        result.records,
        load=load,
        load_s=load_s,
        slo=spec.slo,
        config=config,
        engine=result.engine,
        stopped_early=watch.tripped,
    )
    if "t_s" in result.summary:  # when the load ran, in the caller's time (to line up server metrics)
        level["t_s"] = result.summary["t_s"]
    if progress is not None:
        progress(level)
    return level


async def _relay(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


def _only_short(level: dict[str, Any]) -> bool:
    """Failed only for want of requests: a first users level (its rate unknown), or a Poisson draw
    well short of its mean."""
    return not level["slo_pass"] and not level["enough_requests"] and len(level["reasons"]) == 1


def _next_load(lo: float, hi: float, mode: str) -> float | None:
    if mode == "users":
        mid = (int(lo) + int(hi)) // 2
        return float(mid) if int(lo) < mid < int(hi) else None
    return (lo + hi) / 2


async def _search(
    spec: RunSpec,
    config: CapacityConfig,
    run_level: LevelRunner,
    cancel: asyncio.Event,
    progress: Callable[[dict[str, Any]], None] | None,
) -> _Search:
    s = _Search()
    per_unit: float | None = None

    async def measure(load: float) -> dict[str, Any]:
        nonlocal per_unit
        level = await _measure(spec, load, config, run_level, cancel, per_unit, progress, len(s.levels))
        s.levels.append(level)
        if level["sent_rps"] and config.mode == "users":
            per_unit = level["sent_rps"] / load
        if _only_short(level) and not cancel.is_set():  # too short to judge: again, long enough
            level["superseded"] = True
            level = await _measure(spec, load, config, run_level, cancel, per_unit, progress, len(s.levels))
            s.levels.append(level)
        return level

    load = config.load_min
    while not cancel.is_set() and len(s.levels) < config.max_levels:  # bracket
        level = await measure(load)
        if not level["slo_pass"]:
            s.first_fail = level
            break
        s.best = level
        if load >= config.load_max:
            break
        load = min(load * 2, config.load_max)
    while s.best and s.first_fail and not cancel.is_set() and len(s.levels) < config.max_levels:  # bisect
        lo, hi = s.best["load"], s.first_fail["load"]
        mid = _next_load(lo, hi, config.mode)
        if mid is None or hi / lo - 1 <= config.tolerance:
            break
        level = await measure(mid)
        if level["slo_pass"]:
            s.best = level
        else:
            s.first_fail = level
    if s.best and config.confirm and not cancel.is_set():
        again = await measure(s.best["load"])
        again["confirmation"] = True
        s.confirmed = bool(again["slo_pass"])
        if not s.confirmed:  # the boundary did not hold: the next passing level below it
            s.first_fail = again
            below = [lv for lv in s.levels if lv["slo_pass"] and lv["load"] < again["load"]]
            s.best = max(below, key=lambda lv: lv["load"]) if below else None
    return s


def _block(spec: RunSpec, config: CapacityConfig, s: _Search) -> dict[str, Any]:
    best = s.best
    client_bound = [lv["load"] for lv in s.levels if lv["engine_verdict"] == "client-bound"]
    # the answer rests on the best passing level and the lowest failing one above it
    deciding = [lv for lv in s.levels if best and lv["load"] == best["load"]]
    if s.first_fail:
        deciding += [lv for lv in s.levels if lv["load"] == s.first_fail["load"]]
    untrusted = [lv["load"] for lv in deciding if lv["engine_verdict"] == "client-bound"]
    return {
        "mode": config.mode,
        "max_load": best["load"] if best else None,  # requests/s or users
        # the level's rate, or in users mode the send rate measured at the best level
        "max_rate_rps": (best["load"] if config.mode == "rate" else best["sent_rps"]) if best else None,
        "max_qpm": best["succeeded_qpm"] if best else None,
        "limiting_slo": limiting_slo(s.first_fail),
        "confirmed": s.confirmed,
        "trusted": not untrusted,  # no client-bound level decided the answer
        "client_bound_at": client_bound,
        "slo": dataclasses.asdict(spec.slo),
        "attainment_target": config.attainment,
        "arrival": spec.profile.arrival if config.mode == "rate" else None,
        "warmup_trimmed_s": config.warmup_s,
        "level_min_requests": config.level_min_requests,
        "levels": sorted(s.levels, key=lambda lv: (lv["load"], lv.get("confirmation", False))),
    }


async def find_capacity(
    spec: RunSpec,
    config: CapacityConfig,
    *,
    run_level: LevelRunner | None = None,
    cancel: asyncio.Event | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The ``capacity`` block for ``spec``'s endpoint, prompts and SLO (its profile is replaced)."""

    async def default_runner(level_spec: RunSpec, sink: Any, stop: asyncio.Event) -> RunResult:
        return await run(level_spec, sink=sink, cancel=stop)

    s = await _search(spec, config, run_level or default_runner, cancel or asyncio.Event(), progress)
    block = _block(spec, config, s)
    block["inputs"] = inputs_label(spec.prompts, spec.bucket_edges)
    return block


def prompt_tokens(p: Prompt) -> int:
    """The prompt's counted input tokens, or the labelled character estimate the engine also uses."""
    return p.input_tokens or count_prompt(None, p)


async def _counted(spec: RunSpec) -> list[Prompt]:
    """Prompts with input tokens counted by the endpoint's tokenizer (in a thread), where missing."""
    missing = [p for p in spec.prompts if not p.input_tokens]
    if not missing or not spec.endpoint.tokenizer:
        return spec.prompts

    def count() -> list[Prompt]:
        tok = load_tokenizer(spec.endpoint.tokenizer)
        return [
            p if p.input_tokens else dataclasses.replace(p, input_tokens=count_prompt(tok, p))
            for p in spec.prompts
        ]

    return await asyncio.to_thread(count)


def inputs_label(prompts: Sequence[Prompt], edges: Sequence[int]) -> str:
    for lo, hi in bucket_bounds(edges):
        if all(lo <= prompt_tokens(p) and (hi is None or prompt_tokens(p) < hi) for p in prompts):
            return bucket_label(lo, hi) + " input tokens"
    return "all input lengths"


async def find_capacity_per_bucket(
    spec: RunSpec,
    config: CapacityConfig,
    *,
    run_level: LevelRunner | None = None,
    cancel: asyncio.Event | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """One search per input-token bucket that holds prompts: ``{"mode", "buckets": [...]}``."""
    cancel = cancel or asyncio.Event()
    buckets = []
    prompts = await _counted(spec)
    for lo, hi in bucket_bounds(spec.bucket_edges):
        inside = [p for p in prompts if lo <= prompt_tokens(p) and (hi is None or prompt_tokens(p) < hi)]
        if not inside or cancel.is_set():
            continue
        sub = dataclasses.replace(spec, prompts=inside)
        block = await find_capacity(sub, config, run_level=run_level, cancel=cancel, progress=progress)
        buckets.append({"label": bucket_label(lo, hi), "lo": lo, "hi": hi, **block})
    return {"mode": config.mode, "buckets": buckets}


_NAMES = {
    "ttft": "TTFT",
    "tokens_per_s": "tokens/s",
    "e2e": "E2E",
    "errors": "errors",
    "queue": "queue growth",
}


def sentence(block: dict[str, Any]) -> str:
    """'holds 600 QPM at 16k–32k input tokens with 99% of requests within TTFT ≤ 2 s and ≥ 20
    tokens/s (limited by TTFT)'."""
    where = block.get("label") or block.get("inputs") or "all input lengths"
    if block.get("label"):
        where += " input tokens"
    slo, target = block["slo"], block["attainment_target"]
    terms = []
    if slo.get("ttft_ms") is not None:
        terms.append(f"TTFT ≤ {_seconds(slo['ttft_ms'])}")
    if slo.get("tokens_per_s") is not None:
        terms.append(f"≥ {slo['tokens_per_s']:g} tokens/s")
    if slo.get("e2e_ms") is not None:
        terms.append(f"E2E ≤ {_seconds(slo['e2e_ms'])}")
    within = " and ".join(terms) or "no objective"
    if block["max_qpm"] is None:
        text = f"holds no tested load at {where}: {block['levels'][0]['load'] if block['levels'] else '-'}"
        text += f" {'req/s' if block['mode'] == 'rate' else 'users'} already misses {target * 100:g}% within {within}"
    else:
        text = (
            f"holds {block['max_qpm']:.0f} QPM at {where} with {target * 100:g}% of requests within {within}"
        )
    limit = block.get("limiting_slo")
    if limit:
        text += f" (limited by {_NAMES.get(limit, limit)})"
    if block.get("confirmed") is False:
        text += "; the boundary did not hold when confirmed, the next level down is given"
    if not block.get("trusted", True):
        at = ", ".join(f"{x:g}" for x in block["client_bound_at"])
        text += f"; NOT TRUSTED: the client itself was saturated (at {at})"
    return text


def _seconds(ms: float) -> str:
    return f"{ms / 1000:g} s" if ms >= 1000 else f"{ms:g} ms"


def attach_server_view(block: dict[str, Any] | None, report: dict[str, Any]) -> None:
    """Each level gets the server's running/waiting/KV peak while its load ran (levels carry ``t_s``
    on the same clock as the report's series)."""
    if not block:
        return
    for b in block.get("buckets") or [block]:
        for level in b["levels"]:
            span = level.get("t_s")
            if not span:
                continue
            level["server"] = {
                name: max((v for t, v in points if span[0] <= t <= span[1]), default=None)
                for name, points in report["series"].items()
                if name in ("requests_running", "requests_waiting", "kv_cache_usage")
            }
