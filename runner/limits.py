"""How large a run may be: users, spawn rate, request rate, duration, requests, timeouts, replay
length and shard count.

One check for every caller: the dashboard's forms and API (when a profile, endpoint or plan is
saved), its start service (again, when a run starts) and the engine (``run(spec, limits=...)``
refuses a spec past them before sending anything). The CLI only warns. Each problem names the
limit, its value and the setting that moves it (``LIMIT_USERS`` and so on, in the dashboard's
settings).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from runner.profiles import duration, is_open_loop, per_second
from runner.spec import EndpointSpec, ProfileSpec, RunSpec

__all__ = [
    "SETTINGS",
    "LimitExceeded",
    "Limits",
    "Problem",
    "capacity_problems",
    "endpoint_problems",
    "plan_problems",
    "profile_problems",
    "run_problems",
]


@dataclass(slots=True, frozen=True)
class Limits:
    users: int = 10_000  # closed-loop users, and requests in flight in open loop
    spawn_rate: float = 1_000.0  # users started per second
    rate: float = 10_000.0  # requests per second (open loop, any level or stage)
    duration_s: float = 86_400.0  # a run's duration and a profile's own length
    requests: int = 10_000_000  # a run's max_requests
    timeout_s: float = 3_600.0  # each endpoint timeout (connect, first byte, idle, total)
    replay_entries: int = 1_000_000  # requests in one replay
    replay_s: float = 86_400.0  # a replay's length at its speed
    preview_points: int = 2_000  # samples in a profile's preview chart
    shards: int = 64  # shards of one run


# the dashboard's setting for each limit, named in every message
SETTINGS = {
    "users": "LIMIT_USERS",
    "spawn_rate": "LIMIT_SPAWN_RATE",
    "rate": "LIMIT_RATE",
    "duration_s": "LIMIT_DURATION_S",
    "requests": "LIMIT_REQUESTS",
    "timeout_s": "LIMIT_TIMEOUT_S",
    "replay_entries": "LIMIT_REPLAY_ENTRIES",
    "replay_s": "LIMIT_REPLAY_S",
    "preview_points": "LIMIT_PREVIEW_POINTS",
    "shards": "LIMIT_SHARDS",
}


@dataclass(slots=True, frozen=True)
class Problem:
    """One value past a limit. ``field`` is the form field it came from (``users``, ``duration_s``)."""

    field: str
    what: str
    value: float
    limit: str  # a Limits field
    bound: float

    def __str__(self) -> str:
        return f"{self.what} is {_num(self.value)}; the limit is {_num(self.bound)} ({SETTINGS[self.limit]})"


class LimitExceeded(ValueError):
    """A spec past one or more limits; the message lists each."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def _num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.6g}"


def _over(field: str, what: str, value: Any, limits: Limits, limit: str) -> Iterable[Problem]:
    bound = getattr(limits, limit)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > bound:
        yield Problem(field, what, float(value), limit, float(bound))


def profile_problems(p: ProfileSpec, limits: Limits) -> list[Problem]:
    """Everything in a load shape past ``limits``."""
    out: list[Problem] = []
    open_loop = is_open_loop(p)
    if p.kind == "users" or (p.kind == "sweep" and p.sweep_mode == "budget"):
        out += _over("users", "users", p.users, limits, "users")
    if p.kind == "users":
        out += _over("spawn_rate", "spawn rate (users/s)", p.spawn_rate, limits, "spawn_rate")
    if p.kind == "rate":
        out += _over("rate", "rate (requests/s)", per_second(p, p.rate), limits, "rate")
    if p.kind == "stages":
        peak = max((float(s.get("target", 0)) for s in p.stages), default=0.0)
        if open_loop:
            out += _over("stages", "a stage's rate (requests/s)", per_second(p, peak), limits, "rate")
        else:
            out += _over("stages", "a stage's users", peak, limits, "users")
    if p.kind == "sweep" and p.sweep_mode != "budget":
        peak = max(p.sweep_levels, default=0.0)
        if open_loop:
            out += _over("sweep_levels", "a level's rate (requests/s)", per_second(p, peak), limits, "rate")
        else:
            out += _over("sweep_levels", "a level's users", peak, limits, "users")
    if open_loop:
        out += _over("max_concurrency", "requests in flight", p.max_concurrency, limits, "users")
    if p.kind == "replay":
        out += _over("replay", "the replay's requests", len(p.replay), limits, "replay_entries")
        span = max((float(e.get("t_s", 0)) for e in p.replay), default=0.0) / max(p.speed, 1e-9)
        out += _over("replay", "the replay's length (s, at its speed)", span, limits, "replay_s")
    shape = duration(p)
    if shape is not None:
        field = {"stages": "stages", "sweep": "level_duration_s"}.get(p.kind, "hold_s")
        out += _over(field, "the profile's length (s)", shape, limits, "duration_s")
    return out


def capacity_problems(settings: dict[str, Any], limits: Limits) -> list[Problem]:
    """A capacity search's highest level: users or requests/s, by its mode."""
    if settings.get("mode") == "users":
        return list(_over("load_max", "the highest level (users)", settings.get("load_max"), limits, "users"))
    return list(_over("load_max", "the highest level (requests/s)", settings.get("load_max"), limits, "rate"))


def endpoint_problems(ep: EndpointSpec, limits: Limits) -> list[Problem]:
    t = ep.timeouts
    out: list[Problem] = []
    for name, value in (
        ("timeout_connect_s", t.connect),
        ("timeout_first_byte_s", t.first_byte),
        ("timeout_idle_s", t.idle),
        ("timeout_total_s", t.total),
    ):
        out += _over(name, name.removeprefix("timeout_").replace("_s", "").replace("_", " ") + " timeout (s)",
                     value, limits, "timeout_s")  # fmt: skip
    return out


def plan_problems(
    *, duration_s: float | None, max_requests: int | None, shard_count: int, limits: Limits
) -> list[Problem]:
    """A run's own stops and its shard count."""
    out: list[Problem] = []
    out += _over("duration_s", "duration (s)", duration_s, limits, "duration_s")
    out += _over("max_requests", "max requests", max_requests, limits, "requests")
    out += _over("shard_count", "shards", shard_count, limits, "shards")
    return out


def run_problems(spec: RunSpec, limits: Limits) -> list[Problem]:
    """The whole spec: its load shape, stops, shard count and every endpoint's timeouts."""
    out = profile_problems(spec.profile, limits)
    out += plan_problems(
        duration_s=spec.duration_s,
        max_requests=spec.max_requests,
        shard_count=spec.shard_count,
        limits=limits,
    )
    for ep in [spec.endpoint, *spec.variants]:
        out += endpoint_problems(ep, limits)
    return out
