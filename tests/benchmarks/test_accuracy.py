"""Graded datasets in the dashboard: MATH-500 added in one click, prompt templates per plan, final
verdicts on the stored records, the run page's accuracy and quality blocks, old float summaries, and
accuracy in comparisons (McNemar from the stored verdicts)."""

from __future__ import annotations

import importlib

import pytest
from django.urls import reverse
from django.utils import timezone

from benchmarks import bridge
from benchmarks.models import Dataset, DatasetItem, Plan, RequestRecord, Run, RunSample, Shard
from benchmarks.presenters.accuracy import accuracy_of
from benchmarks.services.runs.grades import records_grades_store
from benchmarks.services.samples import run_sample_get, run_sample_save, verdict_records
from runner import BUILTIN_DATASETS, accuracy_delta, check_rules, parse_rule
from runner import RequestRecord as EngineRecord
from tests.benchmarks.factories import make_finished_run
from tests.benchmarks.test_library import _plan_data

MIGRATION = importlib.import_module("benchmarks.migrations.0011_accuracy_ui")


@pytest.fixture(autouse=True)
def no_enqueue(monkeypatch):
    monkeypatch.setattr("benchmarks.services.datasets.enqueue_on_commit", lambda *a, **kw: None)
    monkeypatch.setattr("benchmarks.services.runs.start.enqueue_on_commit", lambda *a, **kw: None)


def add_math500(client) -> Dataset:
    response = client.post(reverse("dataset_builtin_add", args=["math500"]))
    assert response.status_code == 302
    return Dataset.objects.get(pk=int(response["Location"].rstrip("/").split("/")[-1]))


# --- datasets and templates ---------------------------------------------------------------------------


def test_math500_is_added_in_one_click_with_its_metadata_and_template(cast, client_for):
    client = client_for(cast.alice)
    page = client.get(reverse("dataset_list")).content.decode()
    assert 'id="add-builtin-math500"' in page and 'id="add-builtin-conversations"' in page
    dataset = add_math500(client)
    assert dataset.team == cast.team_a and dataset.builtin == "builtin:math500"
    assert dataset.item_count == 500
    assert dataset.prompt_template == BUILTIN_DATASETS["math500"].template
    item = DatasetItem.objects.get(version__dataset=dataset, index=0)
    assert item.key == item.metadata["unique_id"] == "test/precalculus/807.json"
    assert item.expected == r"\left( 3, \frac{\pi}{2} \right)"
    assert item.metadata["subject"] == "Precalculus" and item.metadata["level"] == 2
    assert add_math500(client).pk == dataset.pk  # a second click finds the team's copy
    detail = client.get(reverse("dataset_detail", args=[dataset.pk])).content.decode()
    assert 'id="dataset-template"' in detail
    client.post(reverse("dataset_clone", args=[dataset.pk]))
    copy = Dataset.objects.get(team=cast.team_a, name="MATH-500 (copy)")
    assert copy.prompt_template == dataset.prompt_template and copy.builtin == ""


def test_conversations_and_viewers(cast, client_for):
    assert (
        client_for(cast.vera).post(reverse("dataset_builtin_add", args=["conversations"])).status_code == 403
    )
    client = client_for(cast.alice)
    assert client.post(reverse("dataset_builtin_add", args=["nope"])).status_code == 404
    response = client.post(reverse("dataset_builtin_add", args=["conversations"]))
    dataset = Dataset.objects.get(team=cast.team_a, builtin="builtin:conversations")
    assert response.status_code == 302 and dataset.item_count == 383 and dataset.prompt_template == ""


def test_a_plan_on_math500_sends_the_default_template_and_item_metadata(cast, client_for):
    dataset = add_math500(client_for(cast.alice))
    plan = cast.plan
    plan.dataset = dataset
    plan.save()
    first = bridge.prompts(plan)[0]
    assert first.id == "test/precalculus/807.json"
    assert first.text.endswith("put your final answer within \\boxed{}.")
    assert first.text.startswith("Convert the point")
    assert first.meta == {"subject": "Precalculus", "level": 2, "unique_id": "test/precalculus/807.json"}
    assert bridge.run_spec(plan).prompt_template == dataset.prompt_template
    page = client_for(cast.alice).get(reverse("plan_detail", args=[plan.pk])).content.decode()
    assert "plan-template" in page and "dataset" in page and "\\boxed{}" in page

    plan.prompt_template = "Q: {prompt}\nA:"
    plan.save()
    assert bridge.prompts(plan)[0].text.startswith("Q: Convert") and bridge.prompts(plan)[0].text.endswith(
        "A:"
    )


def test_plan_template_is_checked_on_save(cast, client_for):
    client = client_for(cast.alice)
    bad = client.post(reverse("plan_create"), _plan_data(cast, prompt_template="no placeholder here"))
    assert bad.status_code == 400
    assert "{prompt}" in bad.context["form"].errors["prompt_template"][0]
    twice = client.post(reverse("plan_create"), _plan_data(cast, prompt_template="{prompt} {prompt}"))
    assert twice.status_code == 400
    ok = client.post(reverse("plan_create"), _plan_data(cast, prompt_template="Answer briefly.\n{prompt}"))
    assert ok.status_code == 302
    assert Plan.objects.get(name="new plan").prompt_template == "Answer briefly.\n{prompt}"


def test_chat_items_get_the_template_on_their_last_user_turn():
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "2+2?"},
    ]
    out = bridge.templated_messages("{prompt} Think.", messages)
    assert [m["content"] for m in out] == ["hi", "hello", "2+2? Think."]
    assert messages[2]["content"] == "2+2?"  # the item itself is untouched


# --- records, summaries ------------------------------------------------------------------------------


def graded_run(plan: Plan, verdicts: dict[str, bool | None], *, failed: tuple[str, ...] = ()) -> Run:
    """A finished run of ``plan`` whose records answered the MATH-style items p0… with these verdicts."""
    prompts = [
        {
            "id": pid,
            "text": f"question {pid}",
            "expected": f"{i}",
            "meta": {"subject": "Algebra" if i % 2 else "Geometry", "level": 1 + i % 3},
        }
        for i, pid in enumerate(verdicts)
    ]
    now = timezone.now()
    run = Run.objects.create(
        team=plan.team,
        plan=plan,
        plan_name=plan.name,
        endpoint_name="sim",
        status=Run.Status.FINISHED,
        spec={"prompts": prompts, "bucket_edges": [0, 1024], "prompt_template": "Q: {prompt}"},
        shard_count=1,
        started_at=now,
        ended_at=now,
    )
    shard = Shard.objects.create(run=run, index=0, status=Shard.Status.FINISHED, started_at=now, ended_at=now)
    for i, (pid, correct) in enumerate(verdicts.items()):
        outcome = "http_error" if pid in failed else "success"
        data = {
            "request_id": f"r{i}",
            "prompt_id": pid,
            "outcome": outcome,
            "scheduled_s": float(i),
            "answer_text": f"\\boxed{{{i if correct else 'x'}}}",
            "correct": correct,
            "extracted_answer": str(i) if correct else "x",
            "grade_reason": "equal" if correct else "different",
        }
        RequestRecord.objects.create(run=run, request_id=f"r{i}", prompt_id=pid, outcome=outcome, data=data)
    records = list(RequestRecord.objects.filter(run=run).values_list("data", flat=True))
    run.summary = bridge.run_summary(run, [shard], records)
    run.save()
    run_sample_save(run=run, records=records, summary=run.summary, shards=[shard])
    return run


def test_final_verdicts_overwrite_what_the_shard_streamed(cast):
    run = make_finished_run(cast.plan)
    RequestRecord.objects.filter(run=run).update(
        data={"request_id": "r0", "prompt_id": "p0", "outcome": "success", "correct": True, "ttft_ms": 50.0}
    )
    graded = EngineRecord(request_id="r0", prompt_id="p0", outcome="success")
    graded.correct, graded.extracted_answer, graded.grade_reason = False, "7", "not equivalent"
    ungraded = EngineRecord(request_id="r9", prompt_id="p9", outcome="success")
    assert records_grades_store(run_id=run.pk, shard_index=0, records=[graded, ungraded]) == 1
    data = RequestRecord.objects.get(run=run, request_id="r0").data
    assert (data["correct"], data["extracted_answer"], data["grade_reason"]) == (False, "7", "not equivalent")
    assert data["ttft_ms"] == 50.0  # the rest of the record is kept


def test_the_exact_summary_has_accuracy_by_subject_and_level(cast):
    run = graded_run(cast.plan, {"p0": True, "p1": False, "p2": True, "p3": True}, failed=("p1",))
    block = run.summary["accuracy"]
    assert (block["graded"], block["correct"], block["failed"]) == (4, 3, 1)
    assert set(block["by_subject"]) == {"Algebra", "Geometry"}
    assert block["by_subject"]["Geometry"]["correct"] == 2
    assert set(block["by_level"]) == {"1", "2", "3"}
    assert block["ci95"][0] < 0.75 < block["ci95"][1]


def test_run_page_shows_accuracy_wrong_answers_and_quality(cast, client_for):
    run = graded_run(cast.plan, {"p0": True, "p1": False, "p2": True, "p3": False})
    page = client_for(cast.bob).get(reverse("run_detail", args=[run.pk])).content.decode()
    assert 'id="accuracy-rate">0.500' in page
    assert 'id="accuracy-by-subject"' in page and 'id="accuracy-by-level"' in page
    assert 'id="wrong-answers"' in page and "question p1" in page and "question p3" in page
    assert "question p0" not in page
    assert "<code>x</code>" in page and "different" in page
    assert 'id="quality-table"' in page and "Reasoning leaked into the answer" in page
    assert 'id="run-template"' in page and "Q: {prompt}" in page


def test_old_float_accuracy_is_migrated_and_still_read(cast, client_for):
    run = make_finished_run(cast.plan)
    run.summary = {**run.summary, "accuracy": 0.8, "sweep": [{"level": 1, "accuracy": 0.5}]}
    run.save()
    summary = dict(run.summary)
    assert accuracy_of(summary)["rate"] == 0.8  # read before migrating
    assert MIGRATION.upgrade_summary(summary)
    assert summary["accuracy"]["rate"] == 0.8 and summary["accuracy"]["ci95"] is None
    assert summary["sweep"][0]["accuracy"]["rate"] == 0.5
    assert not MIGRATION.upgrade_summary(summary)  # twice is once
    # gate rules read accuracy as accuracy.rate, whichever shape
    rule = parse_rule("accuracy<0.9")
    assert check_rules({"accuracy": 0.8}, [rule])[0].broken
    assert check_rules(summary, [rule])[0].broken
    page = client_for(cast.alice).get(reverse("run_detail", args=[run.pk])).content.decode()
    assert 'id="accuracy-rate">0.800' in page and "the rate alone" in page


# --- comparisons ------------------------------------------------------------------------------------


def test_stored_verdicts_pair_two_runs_item_by_item(cast):
    items = [f"p{i}" for i in range(40)]
    base = graded_run(cast.plan, dict.fromkeys(items, True))
    worse = graded_run(cast.plan, {p: i >= 12 for i, p in enumerate(items)})
    sample = RunSample.objects.get(run=worse)
    assert len(sample.verdicts) == 40 and sample.verdicts[0] == ["p0", False, 0]
    delta = accuracy_delta(
        base.summary["accuracy"],
        worse.summary["accuracy"],
        base_records=verdict_records(run_sample_get(run=base)),
        run_records=verdict_records(sample),
    )
    assert delta["test"] == "mcnemar" and delta["regression"] and delta["lost"] == 12
    assert round(delta["delta_pt"]) == -30


def test_sample_rebuilt_from_records_keeps_the_verdicts(cast):
    run = graded_run(cast.plan, {"p0": True, "p1": False})
    RunSample.objects.filter(run=run).delete()
    rebuilt = run_sample_get(run=run)
    assert sorted(rebuilt.verdicts) == [["p0", True, 0], ["p1", False, 0]]


def test_comparison_flags_an_accuracy_regression_with_its_test(cast, client_for):
    items = [f"p{i}" for i in range(40)]
    base = graded_run(cast.plan, dict.fromkeys(items, True))
    worse = graded_run(cast.plan, {p: i >= 12 for i, p in enumerate(items)})
    other_items = graded_run(cast.plan, {f"q{i}": i >= 12 for i in range(40)})
    client = client_for(cast.bob)
    runs = {"runs": f"{base.pk},{worse.pk},{other_items.pk}"}
    page = client.get(reverse("compare"), runs).content.decode()
    assert 'id="accuracy-deltas"' in page
    assert "McNemar (paired by item) (40 pairs: 12 lost, 0 gained)" in page
    assert "two-proportion z-test" in page  # different items: not paired
    assert page.count('<b class="regression">regression</b>') == 2
    assert "-30.0 pt" in page and "per subject" in page
    csv_text = client.get(reverse("compare_export", args=["csv"]), runs).content.decode()
    line = next(line for line in csv_text.splitlines() if line.startswith("Accuracy test"))
    assert "regression" in line and "mcnemar" in line and "two-proportion" in line


def test_old_float_runs_compare_by_rate_without_a_test(cast, client_for):
    old = make_finished_run(cast.plan)
    old.summary = {**old.summary, "accuracy": 0.9}
    old.save()
    new = graded_run(cast.plan, {"p0": True, "p1": False})
    page = client_for(cast.bob).get(reverse("compare"), {"runs": f"{old.pk},{new.pk}"}).content.decode()
    assert 'id="accuracy-deltas"' in page and "no counts to test" in page


def test_migration_rewrites_stored_float_summaries(cast):
    from django.apps import apps

    run = make_finished_run(cast.plan)
    run.summary = {**run.summary, "accuracy": 0.75, "variants": [{"variant": 0, "accuracy": 0.5}]}
    run.save()
    shard = run.shards.get()
    shard.summary = {"accuracy": 1}
    shard.save()
    untouched = graded_run(cast.plan, {"p0": True})
    before = dict(untouched.summary)
    MIGRATION.forwards(apps, None)
    run.refresh_from_db()
    shard.refresh_from_db()
    untouched.refresh_from_db()
    assert run.summary["accuracy"]["rate"] == 0.75 and run.summary["variants"][0]["accuracy"]["rate"] == 0.5
    assert shard.summary["accuracy"]["rate"] == 1.0
    assert untouched.summary == before


def test_api_and_download_hand_out_the_block_for_old_runs(cast, client_for):
    from benchmarks.services.api_tokens import api_token_create
    from tests.benchmarks.api.test_views import api

    run = make_finished_run(cast.plan)
    run.summary = {**run.summary, "accuracy": 0.8}
    run.save()
    token = api_token_create(team=cast.team_a, by=cast.bob, name="gate")[1]
    body = api(token).get(reverse("api_run_summary", args=[run.pk])).json()
    assert body["summary"]["accuracy"]["rate"] == 0.8
    download = client_for(cast.bob).get(reverse("run_summary_json", args=[run.pk]))
    assert b'"rate": 0.8' in download.content or b'"rate":0.8' in download.content


def test_ab_variants_report_and_compare_accuracy_each(cast, client_for):
    """A paired A/B run: accuracy per variant on its page, and variant B against A by McNemar."""
    items = [f"p{i}" for i in range(30)]
    verdicts = {**{(p, 0): True for p in items}, **{(p, 1): i >= 10 for i, p in enumerate(items)}}
    now = timezone.now()
    prompts = [{"id": p, "expected": "1", "meta": {"subject": "Algebra", "level": 1}} for p in items]
    run = Run.objects.create(
        team=cast.team_a,
        plan=cast.plan,
        plan_name="ab",
        endpoint_name="sim",
        status=Run.Status.FINISHED,
        spec={"prompts": prompts, "variants": [{"model": "a"}, {"model": "b"}]},
        shard_count=1,
        started_at=now,
        ended_at=now,
    )
    shard = Shard.objects.create(run=run, index=0, status=Shard.Status.FINISHED, started_at=now, ended_at=now)
    for n, ((pid, variant), ok) in enumerate(verdicts.items()):
        data = {
            "request_id": f"r{n}",
            "prompt_id": pid,
            "variant": variant,
            "outcome": "success",
            "scheduled_s": float(n % 30),
            "correct": ok,
            "grade_reason": "ok" if ok else "different",
        }
        RequestRecord.objects.create(run=run, request_id=f"r{n}", prompt_id=pid, outcome="success", data=data)
    records = list(RequestRecord.objects.filter(run=run).values_list("data", flat=True))
    run.summary = bridge.run_summary(run, [shard], records)
    run.save()
    run_sample_save(run=run, records=records, summary=run.summary, shards=[shard])
    assert set(run.summary["accuracy"]["by_variant"]) == {"0", "1"}
    page = client_for(cast.bob).get(reverse("run_detail", args=[run.pk])).content.decode()
    assert 'id="accuracy-by-variant"' in page
    compared = client_for(cast.bob).get(reverse("compare"), {"runs": str(run.pk)}).content.decode()
    assert "McNemar (paired by item) (30 pairs: 10 lost, 0 gained)" in compared
