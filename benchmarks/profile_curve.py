"""What a load profile asks for over time: users (closed loop) or requests/s (open loop).

A plain function of the spec, used for the preview plot; the engine has its own scheduler.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from runner import ProfileSpec

Point = tuple[float, float]


@dataclass(frozen=True)
class Curve:
    unit: str  # "users" or "requests/s"
    points: list[Point]


def profile_curve(spec: ProfileSpec, duration_s: float | None = None) -> Curve:
    builder = {"users": _users, "stages": _stages, "rate": _rate, "sweep": _sweep, "replay": _replay}[
        spec.kind
    ]
    return builder(spec, duration_s)


def _users(spec: ProfileSpec, duration_s: float | None) -> Curve:
    ramp_up = spec.users / spec.spawn_rate if spec.spawn_rate > 0 else 0.0
    hold = spec.hold_s or max((duration_s or ramp_up + 60.0) - ramp_up - spec.ramp_down_s, 0.0)
    points = [(0.0, 0.0), (ramp_up, float(spec.users)), (ramp_up + hold, float(spec.users))]
    if spec.ramp_down_s:
        points.append((ramp_up + hold + spec.ramp_down_s, 0.0))
    return Curve("users", _clip(points, duration_s))


def _stages(spec: ProfileSpec, duration_s: float | None) -> Curve:
    points, t = [], 0.0
    for stage in spec.stages:
        points += [(t, float(stage["target"])), (t + float(stage["duration_s"]), float(stage["target"]))]
        t += float(stage["duration_s"])
    return Curve(_unit(spec.stage_mode), _clip(points, duration_s))


def _rate(spec: ProfileSpec, duration_s: float | None) -> Curve:
    per_s = spec.rate / 60.0 if spec.rate_unit == "qpm" else spec.rate
    end = duration_s or 60.0
    return Curve("requests/s", [(0.0, per_s), (end, per_s)])


def _sweep(spec: ProfileSpec, duration_s: float | None) -> Curve:
    points, t = [], 0.0
    for level in spec.sweep_levels:
        points += [(t, float(level)), (t + spec.level_duration_s, float(level))]
        t += spec.level_duration_s
    return Curve(_unit(spec.sweep_mode), _clip(points, duration_s))


def _replay(spec: ProfileSpec, duration_s: float | None) -> Curve:
    """Requests started per whole second of the (sped-up) replay."""
    per_second: dict[int, int] = {}
    for entry in spec.replay:
        second = int(float(entry["t_s"]) / (spec.speed or 1.0))
        per_second[second] = per_second.get(second, 0) + 1
    last = max(per_second, default=0)
    points = [(float(s), float(per_second.get(s, 0))) for s in range(last + 1)]
    return Curve("requests/s", _clip(points, duration_s))


def _unit(mode: str) -> str:
    return "users" if mode == "users" else "requests/s"


def _clip(points: list[Point], duration_s: float | None) -> list[Point]:
    """Cut at the run's duration (the run stops there whatever the profile says)."""
    if duration_s is None or not points or points[-1][0] <= duration_s:
        return points
    kept = [p for p in points if p[0] < duration_s]
    value = _value_at(points, duration_s)
    return [*kept, (duration_s, value)]


def _value_at(points: list[Point], t: float) -> float:
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if t0 <= t <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return points[-1][1]
