"""Runs name their prompts (pinned version, item positions) instead of copying every text; shards load
the texts from the version; runs stored with texts keep working."""

from __future__ import annotations

import json

import pytest

from benchmarks import bridge
from benchmarks.models import DatasetItem, Run
from benchmarks.services.runs.start import run_start
from tests.benchmarks.test_datasets import bucket_plan


@pytest.fixture
def no_dispatch(monkeypatch):
    monkeypatch.setattr("benchmarks.services.runs.start.enqueue_on_commit", lambda *a, **kw: None)


def test_a_run_stores_references_and_its_shard_gets_the_same_prompts(cast, no_dispatch):
    plan = cast.plan
    plan.prompt_template = "Answer briefly: {prompt}"
    plan.save()
    expected = bridge.prompts(plan)
    run = run_start(plan=plan, by=cast.alice)
    stored = json.dumps(run.spec)
    assert run.spec["prompts"] == [] and "Tell me about item" not in stored
    ref = run.spec["prompt_ref"]
    assert ref["dataset_version"] == run.dataset_version_id and ref["items"] == list(range(10))
    # the plan changes after the start: the run still sends what it was started with
    plan.prompt_template, plan.max_tokens = "Something else: {prompt}", 999
    plan.save()
    spec = bridge.shard_spec(run, index=0, count=1, api_key="k")
    assert [(p.id, p.text, p.max_tokens) for p in spec.prompts] == [
        (p.id, p.text, p.max_tokens) for p in expected
    ]
    assert spec.prompts[0].text == "Answer briefly: Tell me about item 0."


def test_bucketed_plans_reference_the_chosen_items_in_their_order(cast, no_dispatch):
    plan = bucket_plan(cast, [100, 2000, 3000, 20000, 500, 1500], buckets=["0–1k", "1k–4k"])
    plan.sample_order, plan.bucket_weights = "weighted", {"0-1k": 3, "1k-4k": 1}
    plan.save()
    expected = bridge.prompts(plan)
    run = run_start(plan=plan, by=cast.alice)
    assert run.spec["prompt_ref"]["items"] != list(range(6))  # drawn, not every item in order
    assert [(p.id, p.input_tokens) for p in bridge.spec_prompts(run.spec)] == [
        (p.id, p.input_tokens) for p in expected
    ]


def test_an_old_run_with_texts_in_its_spec_still_runs(cast):
    spec = bridge.run_spec(cast.plan).to_dict()  # the old stored shape: every prompt's text
    run = Run.objects.create(
        team=cast.team_a, plan=cast.plan, plan_name="old", endpoint_name="e", spec=spec, shard_count=1
    )
    shard = bridge.shard_spec(run, index=0, count=1, api_key="k")
    assert [p.text for p in shard.prompts] == [p["text"] for p in spec["prompts"]]
    assert "prompt_ref" not in run.spec and len(bridge.spec_prompts(run.spec)) == 10


def test_graded_prompts_of_a_referencing_run_read_only_the_graded_items(cast, no_dispatch):
    version = cast.plan.dataset.current_version()
    DatasetItem.objects.filter(version=version, index__in=[1, 3]).update(
        expected="42", metadata={"subject": "algebra", "level": 2, "other": "x"}
    )
    run = run_start(plan=cast.plan, by=cast.alice)
    graded = bridge.graded_prompts(run.spec)
    full = [p for p in bridge.spec_prompts(run.spec) if p.expected is not None]
    assert [(p.id, p.expected, p.meta) for p in graded] == [(p.id, p.expected, p.meta) for p in full]
    assert [p.meta for p in graded] == [{"subject": "algebra", "level": 2}] * 2
