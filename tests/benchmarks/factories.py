"""Object graphs for tests: the named cast and the things a run is made of."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from benchmarks.models import (
    Dataset,
    Endpoint,
    LoadProfile,
    Membership,
    Plan,
    RequestRecord,
    Run,
    RunSecond,
    Shard,
    Team,
)
from benchmarks.services.teams import team_create

API_KEY = "sk-test-SECRET-4f9a7c1e2b"  # grep target: must never appear in any response


def make_user(username: str) -> Any:
    return get_user_model().objects.create_user(username, f"{username}@example.com", "correct horse battery")


def make_endpoint(
    team: Team, *, name: str = "sim", base_url: str = "http://127.0.0.1:9/v1", **kw: Any
) -> Endpoint:
    endpoint = Endpoint(
        team=team, name=name, protocol="openai-chat", base_url=base_url, model="llmperf-sim", **kw
    )
    endpoint.set_api_key(API_KEY)
    endpoint.save()
    return endpoint


def make_dataset(
    team: Team, *, n: int = 10, name: str = "prompts", prompts: list[str] | None = None
) -> Dataset:
    """A dataset whose version 1 holds ``prompts`` (default: n short ones with ids p0…)."""
    from benchmarks.services.datasets import NewItems, dataset_create
    from runner.datasets import DatasetItem

    texts = prompts if prompts is not None else [f"Tell me about item {i}." for i in range(n)]
    items = [DatasetItem(prompt=t, metadata={"id": f"p{i}"}) for i, t in enumerate(texts)]
    new = NewItems(items=items, source="paste")
    return dataset_create(team=team, name=name, description="", tokenizer="estimate", new=new, by=None)


def make_profile(team: Team, *, users: int = 2, spawn_rate: float = 100.0, **spec: Any) -> LoadProfile:
    return LoadProfile.objects.create(
        team=team,
        name="two users",
        kind=spec.pop("kind", "users"),
        spec={"users": users, "spawn_rate": spawn_rate, **spec},
    )


def make_plan(team: Team, *, endpoint: Endpoint | None = None, **kw: Any) -> Plan:
    fields: dict[str, Any] = {"duration_s": 3.0, "max_tokens": 16, "quantization": "fp8", "tp": 2}
    fields.update(kw)
    return Plan.objects.create(
        team=team,
        name="smoke",
        endpoint=endpoint or make_endpoint(team),
        dataset=make_dataset(team),
        profile=make_profile(team),
        **fields,
    )


def make_finished_run(plan: Plan) -> Run:
    now = timezone.now()
    run = Run.objects.create(
        team=plan.team,
        plan=plan,
        endpoint=plan.endpoint,
        plan_name=plan.name,
        endpoint_name=plan.endpoint.name,
        status=Run.Status.FINISHED,
        spec={"duration_s": 3, "bucket_edges": [0, 1024]},
        variant=plan.variant(),
        variant_text="quantization=fp8 tp=2",
        shard_count=1,
        started_at=now,
        ended_at=now,
        snapshot={"started": 1, "completed": 1},
        summary={"requests": {"total": 1, "succeeded": 1, "failed": 0}, "ttft_ms": {"p50": 50.0, "count": 1}},
    )
    RunSecond.objects.create(run=run, t=0, point={"t": 0, "ttft_p50": 50.0, "completed": 1, "failed": 0})
    Shard.objects.create(run=run, index=0, status=Shard.Status.FINISHED, hostname="w1@test")
    RequestRecord.objects.create(
        run=run,
        request_id="r0",
        prompt_id="p0",
        outcome="success",
        ttft_ms=50.0,
        e2e_ms=120.0,
        data={
            "request_id": "r0",
            "prompt_id": "p0",
            "outcome": "success",
            "ttft_ms": 50.0,
            "itl_ms": [5.0],
            "packets": [["answer", 50.0, 1, 5]],
        },
    )
    return run


@dataclass
class Cast:
    alice: Any  # owns team A
    bob: Any  # member of team A
    vera: Any  # viewer of team A
    carol: Any  # in team B only
    team_a: Team
    team_b: Team
    endpoint: Endpoint
    plan: Plan
    run: Run

    @property
    def objects(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "dataset": self.plan.dataset,
            "profile": self.plan.profile,
            "plan": self.plan,
            "run": self.run,
        }


def make_cast() -> Cast:
    alice, bob, vera, carol = (make_user(n) for n in ("alice", "bob", "vera", "carol"))
    team_a = team_create(name="Team A", owner=alice)
    Membership.objects.create(team=team_a, user=bob, role=Membership.Role.MEMBER)
    Membership.objects.create(team=team_a, user=vera, role=Membership.Role.VIEWER)
    team_b = team_create(name="Team B", owner=carol)
    make_plan(team_b)  # carol has her own things, so her lists are not empty by accident
    plan = make_plan(team_a)
    return Cast(alice, bob, vera, carol, team_a, team_b, plan.endpoint, plan, make_finished_run(plan))
