from __future__ import annotations

import itertools
import statistics

import pytest

from runner.profiles import arrivals, duration, preview, rate_at, split_profile, split_run, users_at
from runner.spec import EndpointSpec, ProfileSpec, Prompt, RunSpec


def test_users_ramp_at_spawn_rate_then_hold_then_ramp_down() -> None:
    p = ProfileSpec(kind="users", users=10, spawn_rate=2, hold_s=10, ramp_down_s=5)
    assert users_at(p, 0) == 1
    assert users_at(p, 1.0) == 3  # 2 users/s after the first
    assert users_at(p, 4.99) == 10
    assert users_at(p, 12) == 10
    assert users_at(p, 5 + 10 + 2.5) == 5
    assert users_at(p, 5 + 10 + 5) == 0
    assert duration(p) == pytest.approx(20)


def test_stages_ramp_toward_each_target() -> None:
    p = ProfileSpec(
        kind="stages", spawn_rate=4, stages=[{"duration_s": 5, "target": 10}, {"duration_s": 5, "target": 2}]
    )
    assert users_at(p, 1) == 4
    assert users_at(p, 4) == 10
    assert users_at(p, 6) == 6  # ramping down at 4/s from 10
    assert users_at(p, 9) == 2


def test_constant_rate_is_evenly_spaced_and_qpm_converts() -> None:
    p = ProfileSpec(kind="rate", rate=600, rate_unit="qpm", arrival="constant")
    times = [t for t, _ in itertools.islice(arrivals(p), 50)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g == pytest.approx(0.1) for g in gaps)


def test_poisson_rate_has_the_right_mean_and_is_seeded() -> None:
    p = ProfileSpec(kind="rate", rate=50, arrival="poisson", seed=3)
    times = [t for t, _ in itertools.islice(arrivals(p), 5000)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert statistics.mean(gaps) == pytest.approx(0.02, rel=0.05)
    assert statistics.stdev(gaps) == pytest.approx(0.02, rel=0.1)  # exponential: sd == mean
    assert times[:10] == [t for t, _ in itertools.islice(arrivals(p), 10)]


def test_sweep_levels_in_order() -> None:
    p = ProfileSpec(kind="sweep", sweep_levels=[1, 4, 16], level_duration_s=10)
    assert [users_at(p, t) for t in (0, 9.9, 10, 25)] == [1, 1, 4, 16]
    r = ProfileSpec(
        kind="sweep", sweep_mode="rate", sweep_levels=[5, 10], level_duration_s=2, arrival="constant"
    )
    times = [t for t, _ in arrivals(r)]
    assert sum(1 for t in times if t < 2) == pytest.approx(10, abs=1)
    assert sum(1 for t in times if t >= 2) == pytest.approx(20, abs=1)
    assert rate_at(r, 3) == 10


def test_replay_keeps_offsets_scaled_by_speed() -> None:
    p = ProfileSpec(kind="replay", replay=[{"t_s": 0, "prompt": 2}, {"t_s": 4, "prompt": 0}], speed=2)
    assert list(arrivals(p)) == [(0.0, 2), (2.0, 0)]


def test_shards_add_up_to_the_whole() -> None:
    p = ProfileSpec(kind="users", users=10, spawn_rate=2)
    parts = [split_profile(p, i, 3) for i in range(3)]
    assert sum(q.users for q in parts) == 10
    assert sum(q.spawn_rate for q in parts) == pytest.approx(2)
    r = ProfileSpec(kind="rate", rate=30)
    assert sum(split_profile(r, i, 4).rate for i in range(4)) == pytest.approx(30)
    spec = RunSpec(
        endpoint=EndpointSpec(protocol="openai-chat", base_url="http://x"),
        prompts=[Prompt(id="a")],
        profile=p,
        max_requests=11,
    )
    assert sum(split_run(spec, i, 3).max_requests or 0 for i in range(3)) == 11


def test_preview_gives_a_curve() -> None:
    p = ProfileSpec(kind="users", users=4, spawn_rate=1, hold_s=4)
    curve = preview(p, points=9)
    assert curve["users"][0] == 1 and max(curve["users"]) == 4 and len(curve["t"]) == 9


def test_sharded_ramp_and_constant_schedule_match_the_whole() -> None:
    p = ProfileSpec(kind="users", users=32, spawn_rate=1, hold_s=10)
    parts = [split_profile(p, i, 8) for i in range(8)]
    for t in (0, 0.5, 1, 5, 6.5, 20.2, 31.5, 40):
        assert sum(users_at(q, t) for q in parts) == users_at(p, t), t
    assert {duration(q) for q in parts} == {duration(p)}
    r = ProfileSpec(kind="rate", rate=10, arrival="constant")
    merged = sorted(t for i in range(2) for t, _ in itertools.islice(arrivals(split_profile(r, i, 2), i), 20))
    gaps = [b - a for a, b in itertools.pairwise(merged)]
    assert all(g == pytest.approx(0.1) for g in gaps)


def test_shuffled_order_is_shared_so_shards_cover_every_prompt() -> None:
    from runner.engine import Engine

    spec = RunSpec(
        endpoint=EndpointSpec(protocol="openai-chat", base_url="http://x"),
        prompts=[Prompt(id=str(i)) for i in range(10)],
        sample_order="shuffled",
    )
    seen = set()
    for i in range(2):
        order = Engine(split_run(spec, i, 2))._prompt_order()
        seen |= {next(order) for _ in range(5)}
    assert seen == set(range(10))
