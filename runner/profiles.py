"""Load shapes: how many virtual users (closed loop) or which send times (open loop), over time.

A profile is a pure function of elapsed time, like Locust's ``LoadTestShape.tick()``: the engine
asks ``users_at(t)`` every tick, or walks ``arrivals()`` for open-loop send times. Nothing here
sleeps or does I/O, so every shape is unit-testable and previewable in the browser.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Iterator

from runner.spec import ProfileSpec, RunSpec


def is_open_loop(p: ProfileSpec) -> bool:
    return (
        p.kind in ("rate", "replay")
        or (p.kind == "stages" and p.stage_mode == "rate")
        or (p.kind == "sweep" and p.sweep_mode == "rate")
    )


def per_second(p: ProfileSpec, rate: float) -> float:
    return rate / 60.0 if p.rate_unit == "qpm" else rate


def duration(p: ProfileSpec) -> float | None:
    """How long the shape itself lasts (None = until the run's duration or request limit)."""
    if p.kind == "stages":
        return sum(float(s["duration_s"]) for s in p.stages) or None
    if p.kind == "sweep":
        return len(p.sweep_levels) * p.level_duration_s or None
    if p.kind == "replay":
        return None  # a replay ends when its last entry has been sent, not on a clock
    if p.kind == "users" and p.hold_s > 0:
        return p.phase_s + p.users / max(p.spawn_rate, 1e-9) + p.hold_s + p.ramp_down_s
    return None


def budget_at(p: ProfileSpec, level: int | None) -> tuple[str, str] | None:
    """A thinking-budget sweep's (parameter, value) for ``level``; None for any other profile."""
    if p.kind != "sweep" or p.sweep_mode != "budget" or level is None or not p.budget_levels:
        return None
    return p.budget_param, p.budget_levels[min(level, len(p.budget_levels) - 1)]


def level_at(p: ProfileSpec, t: float) -> int | None:
    if p.kind != "sweep" or not p.sweep_levels:
        return None
    return min(int(t // p.level_duration_s), len(p.sweep_levels) - 1)


def _ramp(start: float, target: float, rate: float, dt: float) -> float:
    step = rate * dt
    return min(target, start + step) if target >= start else max(target, start - step)


def users_at(p: ProfileSpec, t: float) -> int:
    """Closed-loop target users at ``t`` seconds: ramps move at ``spawn_rate`` users/s."""
    rate = max(p.spawn_rate, 1e-9)
    if p.phase_s:
        if t < p.phase_s:
            return 0
        t -= p.phase_s
    if p.kind == "users":
        up = p.users / rate
        if t < up:
            return int(rate * t) + 1 if p.users else 0  # the first user starts at t = 0
        if p.hold_s > 0 and p.ramp_down_s > 0 and t > up + p.hold_s:
            left = 1 - (t - up - p.hold_s) / p.ramp_down_s
            return max(0, math.ceil(p.users * left))
        return p.users
    if p.kind == "stages":
        level, elapsed = 0.0, 0.0
        for stage in p.stages:
            d, target = float(stage["duration_s"]), float(stage["target"])
            if t <= elapsed + d:
                return int(_ramp(level, target, rate, t - elapsed) + 1e-9) or (
                    1 if target and t >= elapsed else 0
                )
            level = _ramp(level, target, rate, d)
            elapsed += d
        return int(level)
    if p.kind == "sweep":
        lvl = level_at(p, t)
        return int(p.sweep_levels[lvl]) if lvl is not None else 0
    return 0


def rate_at(p: ProfileSpec, t: float) -> float:
    """Open-loop requests/s at ``t``."""
    if p.kind == "rate":
        return per_second(p, p.rate)
    if p.kind == "stages":
        elapsed = 0.0
        for stage in p.stages:
            elapsed += float(stage["duration_s"])
            if t < elapsed:
                return per_second(p, float(stage["target"]))
        return 0.0
    if p.kind == "sweep":
        lvl = level_at(p, t)
        return per_second(p, p.sweep_levels[lvl]) if lvl is not None else 0.0
    return 0.0


def arrivals(p: ProfileSpec, seed_offset: int = 0) -> Iterator[tuple[float, int | None]]:
    """Open-loop send times (seconds from start) with the prompt index for replays (else None)."""
    if p.kind == "replay":
        for entry in sorted(p.replay, key=lambda e: e["t_s"]):
            yield entry["t_s"] / p.speed, int(entry.get("prompt", -1)) if "prompt" in entry else None
        return
    rng = random.Random(p.seed * 1_000_003 + seed_offset)
    end = duration(p)
    t = p.phase_s if p.arrival == "constant" else 0.0
    while end is None or t < end:
        rate = rate_at(p, t)
        if rate <= 0:
            nxt = _next_change(p, t)
            if nxt is None:
                return
            t = nxt
            continue
        gap = rng.expovariate(rate) if p.arrival == "poisson" else 1.0 / rate
        nxt = _next_change(p, t)
        if nxt is not None and t + gap >= nxt and p.arrival == "constant":
            t = nxt  # a new level starts its own even spacing
            continue
        t += gap
        if end is None or t < end:
            yield t, None


def _next_change(p: ProfileSpec, t: float) -> float | None:
    if p.kind == "stages":
        edge = 0.0
        for stage in p.stages:
            edge += float(stage["duration_s"])
            if edge > t:
                return edge
    if p.kind == "sweep" and p.sweep_levels:
        nxt = (math.floor(t / p.level_duration_s) + 1) * p.level_duration_s
        return nxt if nxt < len(p.sweep_levels) * p.level_duration_s else None
    return None


def _share(value: float, index: int, count: int, integer: bool) -> float:
    if not integer:
        return value / count
    whole = int(value)
    return whole // count + (1 if index < whole % count else 0)


def split_run(spec: RunSpec, index: int, count: int) -> RunSpec:
    """A run's share for shard ``index`` of ``count``: users, rates and max_requests split evenly."""
    part = RunSpec.from_dict(spec.to_dict())
    part.shard_index, part.shard_count = index, count
    part.profile = split_profile(spec.profile, index, count)
    if spec.max_requests is not None:
        part.max_requests = spec.max_requests // count + (1 if index < spec.max_requests % count else 0)
    return part


def split_profile(p: ProfileSpec, index: int, count: int) -> ProfileSpec:
    """Shard ``index`` of ``count``: users and rates split so the shards add up to the whole."""
    if count <= 1:
        return dataclasses.replace(p)
    users_mode = not is_open_loop(p)
    q = dataclasses.replace(p)  # arrivals() offsets the seed per shard; prompt order stays shared
    q.users = int(_share(p.users, index, count, True))
    q.spawn_rate = p.spawn_rate / count
    q.rate = p.rate / count
    q.stages = [
        {"duration_s": s["duration_s"], "target": _share(float(s["target"]), index, count, users_mode)}
        for s in p.stages
    ]
    q.sweep_levels = [_share(v, index, count, users_mode) for v in p.sweep_levels]
    q.replay = [e for i, e in enumerate(p.replay) if i % count == index]
    # interleave the shards: shard i's first user (or constant arrival) comes i steps after shard 0's,
    # so together they ramp at spawn_rate and send evenly spaced, as one process would
    q.phase_s = p.phase_s + index / max(p.spawn_rate if not is_open_loop(p) else per_second(p, p.rate), 1e-9)
    if p.kind == "users" and p.hold_s > 0:
        q.hold_s = (
            p.hold_s + (p.users / p.spawn_rate) - (q.users / q.spawn_rate if q.users else 0) - q.phase_s
        )
    if p.max_concurrency:
        q.max_concurrency = max(1, int(_share(p.max_concurrency, index, count, True)))
    return q


def preview(p: ProfileSpec, horizon_s: float | None = None, points: int = 200) -> dict[str, list[float]]:
    """Users or rate over time, sampled from the functions the engine runs, for the dashboard's charts.

    ``horizon_s`` is the run's duration when known: like the engine, the preview ends at whichever of
    the shape and the run ends first (60 s when neither ends on a clock)."""
    if p.kind == "replay":
        shape: float | None = max((e["t_s"] for e in p.replay), default=0.0) / max(p.speed, 1e-9) or 1.0
    else:
        shape = duration(p)
    end = min(shape, horizon_s) if shape and horizon_s else shape or horizon_s or 60.0
    ts = [end * i / (points - 1) for i in range(points)]
    if is_open_loop(p):
        if p.kind == "replay":
            counts = [0.0] * points
            for t, _ in arrivals(p):
                if t > end:
                    break
                counts[min(points - 1, int(t / end * (points - 1)))] += 1
            width = end / (points - 1)
            return {"t": ts, "rate": [c / width for c in counts]}
        return {"t": ts, "rate": [rate_at(p, t) for t in ts]}
    return {"t": ts, "users": [float(users_at(p, t)) for t in ts]}


def peak_concurrency(p: ProfileSpec) -> int:
    if not is_open_loop(p):
        if p.kind == "stages":
            return int(max((float(s["target"]) for s in p.stages), default=0))
        if p.kind == "sweep":
            return int(max(p.sweep_levels, default=0))
        return p.users
    if p.max_concurrency:
        return p.max_concurrency
    # open loop: Little's law with a generous 5 s per request, so warm-up covers typical LLM latency
    if p.kind == "stages":
        peak_rate = max((per_second(p, float(s["target"])) for s in p.stages), default=0.0)
    elif p.kind == "sweep":
        peak_rate = max((per_second(p, v) for v in p.sweep_levels), default=0.0)
    else:
        peak_rate = per_second(p, p.rate) if p.kind == "rate" else 0.0
    return int(peak_rate * 5)
