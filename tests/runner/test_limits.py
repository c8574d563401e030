"""runner.limits: every limit refuses past its bound and names itself; the engine refuses a spec past
them before sending anything; the CLI only warns."""

from __future__ import annotations

import asyncio

import pytest

from runner import LimitExceeded, Limits, capacity_problems, profile_problems, run_problems
from runner.cli import warn_past_limits
from runner.engine import Engine, run
from runner.spec import EndpointSpec, ProfileSpec, Prompt, RunSpec, Timeouts

SMALL = Limits(
    users=10,
    spawn_rate=5,
    rate=20,
    duration_s=600,
    requests=1000,
    timeout_s=60,
    replay_entries=3,
    replay_s=100,
    shards=4,
)


def spec(**kw) -> RunSpec:
    endpoint = kw.pop("endpoint", EndpointSpec(protocol="openai-chat", base_url="http://127.0.0.1:9/v1"))
    return RunSpec(endpoint=endpoint, prompts=[Prompt(id="p", text="hi")], **kw)


def messages(problems) -> list[str]:
    return [str(p) for p in problems]


def test_a_billion_users_at_a_billion_per_second_is_refused_naming_both_limits():
    problems = profile_problems(ProfileSpec(kind="users", users=10**9, spawn_rate=1e9), Limits())
    assert messages(problems) == [
        "users is 1,000,000,000; the limit is 10,000 (LIMIT_USERS)",
        "spawn rate (users/s) is 1,000,000,000; the limit is 1,000 (LIMIT_SPAWN_RATE)",
    ]
    assert [p.field for p in problems] == ["users", "spawn_rate"]


@pytest.mark.parametrize(
    ("profile", "field", "setting"),
    [
        (ProfileSpec(kind="rate", rate=21), "rate", "LIMIT_RATE"),
        (ProfileSpec(kind="rate", rate=1201, rate_unit="qpm"), "rate", "LIMIT_RATE"),  # 20.02/s
        (ProfileSpec(kind="stages", stages=[{"duration_s": 1, "target": 11}]), "stages", "LIMIT_USERS"),
        (
            ProfileSpec(kind="stages", stage_mode="rate", stages=[{"duration_s": 1, "target": 25}]),
            "stages",
            "LIMIT_RATE",
        ),
        (ProfileSpec(kind="sweep", sweep_levels=[1, 2, 11]), "sweep_levels", "LIMIT_USERS"),
        (ProfileSpec(kind="sweep", sweep_mode="rate", sweep_levels=[30]), "sweep_levels", "LIMIT_RATE"),
        (
            ProfileSpec(kind="sweep", sweep_levels=[1, 2], level_duration_s=301),
            "level_duration_s",
            "LIMIT_DURATION_S",
        ),
        (ProfileSpec(kind="stages", stages=[{"duration_s": 601, "target": 1}]), "stages", "LIMIT_DURATION_S"),
        (ProfileSpec(kind="users", users=2, spawn_rate=1, hold_s=700), "hold_s", "LIMIT_DURATION_S"),
        (ProfileSpec(kind="rate", rate=1, max_concurrency=11), "max_concurrency", "LIMIT_USERS"),
        (ProfileSpec(kind="replay", replay=[{"t_s": 0, "prompt": 0}] * 4), "replay", "LIMIT_REPLAY_ENTRIES"),
        (ProfileSpec(kind="replay", replay=[{"t_s": 1e6, "prompt": 0}]), "replay", "LIMIT_REPLAY_S"),
    ],
)
def test_each_profile_limit_refuses_past_its_bound(profile: ProfileSpec, field: str, setting: str):
    problems = profile_problems(profile, SMALL)
    assert len(problems) == 1, messages(problems)
    assert problems[0].field == field and setting in str(problems[0])


def test_at_the_bounds_nothing_is_refused():
    at = [
        ProfileSpec(kind="users", users=10, spawn_rate=5, hold_s=590),
        ProfileSpec(kind="rate", rate=20, max_concurrency=10),
        ProfileSpec(kind="rate", rate=1200, rate_unit="qpm"),
        ProfileSpec(kind="sweep", sweep_levels=[10, 10], level_duration_s=300),
        ProfileSpec(kind="replay", replay=[{"t_s": 200, "prompt": 0}] * 3, speed=2),  # 100 s at 2x
    ]
    for profile in at:
        assert profile_problems(profile, SMALL) == [], profile


def test_a_run_checks_its_stops_shards_and_every_endpoints_timeouts():
    slow = EndpointSpec(protocol="openai-chat", base_url="http://x/v1", timeouts=Timeouts(total=3601))
    problems = run_problems(
        spec(duration_s=86_401, max_requests=10**8, shard_count=65, endpoint=slow, variants=[slow]), Limits()
    )
    assert messages(problems) == [
        "duration (s) is 86,401; the limit is 86,400 (LIMIT_DURATION_S)",
        "max requests is 100,000,000; the limit is 10,000,000 (LIMIT_REQUESTS)",
        "shards is 65; the limit is 64 (LIMIT_SHARDS)",
        "total timeout (s) is 3,601; the limit is 3,600 (LIMIT_TIMEOUT_S)",
        "total timeout (s) is 3,601; the limit is 3,600 (LIMIT_TIMEOUT_S)",
    ]
    assert run_problems(spec(), Limits()) == []


def test_a_capacity_search_is_bounded_by_its_highest_level():
    assert "LIMIT_RATE" in str(capacity_problems({"mode": "rate", "load_max": 20_000}, Limits())[0])
    assert "LIMIT_USERS" in str(capacity_problems({"mode": "users", "load_max": 20_000}, Limits())[0])
    assert capacity_problems({"mode": "rate", "load_max": 64}, Limits()) == []


def test_the_engine_refuses_a_spec_past_the_limits_before_sending():
    huge = spec(profile=ProfileSpec(kind="users", users=10**9, spawn_rate=1e9))
    with pytest.raises(LimitExceeded) as caught:
        Engine(huge, limits=Limits())
    assert "users is 1,000,000,000; the limit is 10,000 (LIMIT_USERS)" in str(caught.value)
    with pytest.raises(LimitExceeded):
        asyncio.run(run(huge, limits=Limits()))
    Engine(huge)  # without limits (the CLI), the engine takes it


def test_the_cli_warns_past_the_limits_and_stays_silent_within(capsys):
    lines = warn_past_limits(spec(profile=ProfileSpec(kind="users", users=20_000)))
    err = capsys.readouterr().err
    assert lines and "warning: users is 20,000; the limit is 10,000 (LIMIT_USERS)" in err
    assert "the CLI runs it" in err
    assert warn_past_limits(spec()) == [] and capsys.readouterr().err == ""
