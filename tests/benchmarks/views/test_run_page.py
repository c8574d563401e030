"""The run page reads bounded data whatever the run's size; its token audit is one SQL aggregation
stored at finalize; every request is in a paginated, sortable, filterable table with a drill-down; the
raw records stream out as JSONL (page and API); notes, delete and "run again" work for writers only."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from benchmarks import bridge
from benchmarks.models import Comparison, PlanSchedule, RequestRecord, Run, RunSecond, Shard
from benchmarks.selectors.token_audit import token_audit_summary
from benchmarks.services.api_tokens import api_token_create
from benchmarks.services.runs.delete import run_delete_execute
from benchmarks.services.runs.finalize import run_finalize
from runner import LiveAggregate, ShardStats
from runner import RequestRecord as EngineRecord
from tests.benchmarks.compare_runs import synthetic_records

SECONDS = 5  # the same per-second history for every size: only the record count changes


def rich(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records shaped like the engine's: 128 gaps and 129 packets each, usage beside the client's
    count (every 7th server over-reports by 20%), a failure every 25th, answers kept, a level."""
    for i, r in enumerate(records):
        r["itl_ms"] = [5.0 + (j % 7) * 0.25 for j in range(128)]
        r["packets"] = [["answer", 50.0 + j * 5.0, 1, 4] for j in range(129)]
        r["client_output_tokens"] = 64
        r["usage_output_tokens"] = 77 if i % 7 == 0 else 64
        r["client_input_tokens"] = r["input_tokens"]
        r["usage_input_tokens"] = r["input_tokens"] + 12
        r["answer_text"] = f"answer {i}"
        r["level"] = i % 2
        r["correct"] = None
        if i % 25 == 3:
            r.update(
                outcome="http_error", http_status=503, error="upstream busy", ttft_ms=None, tokens_per_s=None
            )
    return records


def big_run(plan, n: int, *, seed: int = 0) -> Run:
    """A finished run of ``n`` records, ended through the real finalize, with the merged live
    histograms a real run stores (``Run.live``)."""
    records = rich(synthetic_records(n, seed=seed))
    spec = bridge.run_spec(plan).to_dict()
    spec["bucket_edges"] = [0, 1024, 4096]
    now = timezone.now()
    run = Run.objects.create(
        team=plan.team,
        plan=plan,
        endpoint=plan.endpoint,
        plan_name=plan.name,
        endpoint_name=plan.endpoint.name,
        status=Run.Status.RUNNING,
        spec=spec,
        variant=plan.variant(),
        shard_count=1,
        started_at=now - timedelta(seconds=SECONDS),
    )
    Shard.objects.create(
        run=run, index=0, status=Shard.Status.FINISHED, started_at=run.started_at, ended_at=now
    )
    RequestRecord.objects.bulk_create([bridge.record_row(run.pk, r) for r in records], batch_size=2000)
    RunSecond.objects.bulk_create(
        [
            RunSecond(run=run, t=t, point={"t": t, "ttft_p50": 100.0, "completed": n // SECONDS})
            for t in range(SECONDS)
        ]
    )
    stats = ShardStats(0)
    for i, r in enumerate(records):
        stats.finished(i % SECONDS, EngineRecord.from_dict(r))
    aggregate = LiveAggregate()
    aggregate.merge(stats.delta(final=True))
    Run.objects.filter(pk=run.pk).update(live=aggregate.to_dict())
    run_finalize(run_id=run.pk)
    run.refresh_from_db()
    return run


def fetch_page(client: Client, run: Run) -> tuple[str, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("run_detail", args=[run.pk]))
    assert response.status_code == 200
    return response.content.decode(), [q["sql"] for q in queries.captured_queries]


def test_the_run_page_reads_the_same_bounded_data_at_50_and_2000_records(cast, client_for):
    small, large = big_run(cast.plan, 50, seed=1), big_run(cast.plan, 2000, seed=2)
    client = client_for(cast.alice)
    fetch_page(client, small)  # warm caches (sessions, content types) out of the comparison
    small_html, small_sql = fetch_page(client, small)
    large_html, large_sql = fetch_page(client, large)
    assert len(large_sql) == len(small_sql), (len(small_sql), len(large_sql))
    # the HTML differs only in the width of its numbers, never by a row per request
    assert abs(len(large_html) - len(small_html)) < 0.02 * len(small_html), (len(small_html), len(large_html))
    assert len(large_html) < 1_500_000
    for sql in large_sql:  # every read of the records is a few rows, never all of them
        if "benchmarks_requestrecord" in sql:
            assert "LIMIT" in sql, sql
    # no per-request chart points: a successful request in the middle is nowhere on the page
    assert "r1000-0" not in large_html and "ttft_points" not in large_html
    for part in ("ttft_hist", "ttft_cdf", "itl_hist", "tps_hist", "summary-table", 'id="headline"'):
        assert part in large_html, part


def test_the_distribution_charts_come_from_the_stored_histogram(cast, client_for):
    run = big_run(cast.plan, 400)
    html = client_for(cast.alice).get(reverse("run_detail", args=[run.pk])).content.decode()
    start = html.index('<script id="ttft_hist" type="application/json">') + len(
        '<script id="ttft_hist" type="application/json">'
    )
    figure = json.loads(html[start : html.index("</script>", start)])
    bars = figure["data"][0]
    ok = RequestRecord.objects.filter(run=run, outcome="success").count()
    assert sum(bars["y"]) == ok  # every successful request, each once
    slowest = max(
        RequestRecord.objects.filter(run=run).exclude(ttft_ms=None).values_list("ttft_ms", flat=True)
    )
    assert bars["x"][-1] == pytest.approx(slowest, rel=0.05)


def test_the_headline_verdict_and_conventions_come_first_from_the_summary(cast, client_for):
    run = big_run(cast.plan, 100)
    Run.objects.filter(pk=run.pk).update(summary={**run.summary, "engine": {"verdict": "client-bound"}})
    html = client_for(cast.alice).get(reverse("run_detail", args=[run.pk])).content.decode()
    assert html.index('id="headline"') < html.index('id="live"') < html.index('id="summary-table"')
    shown = html.split('id="headline-ttft-p50">')[1].split("<")[0]
    assert float(shown) == pytest.approx(run.summary["ttft_ms"]["p50"], abs=0.051)
    assert "load generator itself was saturated" in html
    details = html.split('<details id="conventions">')[1].split("</details>")[0]
    assert "How other tools would report this run" in details
    assert "vLLM bench serve TPOT" in details and "ttft_first_chunk_ms" in details


# --- the token audit --------------------------------------------------------------------------------


def python_audit(run: Run, threshold: float = 0.05) -> dict[str, Any]:
    """The audit the old way (a Python pass over every record), to check the SQL against."""
    rows = [r.data for r in RequestRecord.objects.filter(run=run)]
    paired = [
        r
        for r in rows
        if r.get("usage_output_tokens") is not None and r.get("client_output_tokens") is not None
    ]
    off = [
        r
        for r in paired
        if abs(r["usage_output_tokens"] - r["client_output_tokens"])
        > threshold * max(1, r["client_output_tokens"])
    ]
    return {
        "compared": len(paired),
        "usage_out": sum(r["usage_output_tokens"] for r in paired),
        "client_out": sum(r["client_output_tokens"] for r in paired),
        "disagreeing": len(off),
    }


def test_the_token_audit_is_one_aggregation_stored_at_finalize(cast):
    run = big_run(cast.plan, 210)
    stored = run.summary["token_audit"]
    expected = python_audit(run)
    assert stored["compared"] == expected["compared"] == 210
    assert stored["totals"]["usage_out"] == expected["usage_out"]
    assert stored["totals"]["client_out"] == expected["client_out"]
    assert stored["disagreeing"] == expected["disagreeing"] == 30  # every 7th: 77 against 64
    assert stored["discrepancy_out_pct"] == pytest.approx(
        (expected["usage_out"] - expected["client_out"]) * 100 / expected["client_out"]
    )
    assert stored == token_audit_summary(run)
    # a superset of the engine's own audit: the stored shape only grew
    assert stored["usage_output_tokens"] == expected["usage_out"] and stored["discrepancy_pct"] is not None
    assert stored["disagreeing_ids"] == [f"r{i}-0" for i in range(0, 210, 7)]
    with CaptureQueriesContext(connection) as queries:
        token_audit_summary(run)
    assert len(queries.captured_queries) == 2  # the aggregate and the first ids, whatever the size


def test_counts_that_are_missing_or_not_numbers_are_no_count_and_no_error(cast):
    run = big_run(cast.plan, 20)
    odd = {"request_id": "odd", "usage_output_tokens": "lots", "client_output_tokens": 12.6, "variant": 1}
    row = bridge.record_row(run.pk, odd)
    assert (row.usage_output_tokens, row.client_output_tokens, row.client_input_tokens, row.variant) == (
        None,
        13,
        None,
        1,
    )
    row.save()
    bridge.record_row(
        run.pk, {"request_id": "flag", "usage_output_tokens": True, "client_output_tokens": 3}
    ).save()
    audit = token_audit_summary(run)
    assert audit["compared"] == 20 and audit["requests"] == 22


def test_an_old_run_without_the_stored_audit_gets_it_computed_on_the_page(cast, client_for):
    run = big_run(cast.plan, 70)
    old = {k: v for k, v in run.summary.items() if k != "token_audit"}
    old["token_audit"] = {"compared": 70, "disagreeing": 10, "disagreeing_ids": []}  # the engine's own shape
    Run.objects.filter(pk=run.pk).update(summary=old)
    html = client_for(cast.alice).get(reverse("run_detail", args=[run.pk])).content.decode()
    assert "10 of 70 requests differ by more than 5%" in html
    assert reverse("run_requests", args=[run.pk]) + "?audit=disagrees" in html
    # a stricter threshold than the stored one is computed too
    html = client_for(cast.alice).get(reverse("run_detail", args=[run.pk]), {"audit_threshold": "50"}).content
    assert "0 of 70 requests differ by more than 50%" in html.decode()


# --- the per-request table ----------------------------------------------------------------------------


def table(client: Client, run: Run, **query: Any) -> list[str]:
    response = client.get(reverse("run_requests", args=[run.pk]), query)
    assert response.status_code == 200
    return [row["id"] for row in response.context["rows"]]


def test_the_requests_table_is_worst_first_and_sorts_and_filters_in_sql(cast, client_for):
    run = big_run(cast.plan, 150)
    client = client_for(cast.alice)
    records = {r.pk: r for r in RequestRecord.objects.filter(run=run)}
    worst = table(client, run)
    failed = [pk for pk, r in records.items() if r.outcome != "success"]
    assert set(worst[: len(failed)]) == set(failed) and len(worst) == 50
    after = [records[pk].ttft_ms for pk in worst[len(failed) :]]
    assert after == sorted(after, reverse=True)
    assert after[0] == max(r.ttft_ms for r in records.values() if r.ttft_ms is not None)

    for sort, key, descending in (("e2e", "e2e_ms", True), ("tokens_per_s", "tokens_per_s", False)):
        values = [getattr(records[pk], key) for pk in table(client, run, sort=sort)]
        present = [v for v in values if v is not None]
        assert present == sorted(present, reverse=descending), sort

    assert {records[pk].outcome for pk in table(client, run, outcome="failed")} == {"http_error"}
    in_bucket = table(client, run, bucket="1k–4k", outcome="success")
    assert in_bucket and all(1024 <= records[pk].data["client_input_tokens"] < 4096 for pk in in_bucket)
    disagree = table(client, run, audit="disagrees")
    assert len(disagree) == 22 and all(records[pk].data["usage_output_tokens"] == 77 for pk in disagree)


def test_the_requests_table_pages_without_overlap_and_shrugs_off_junk(cast, client_for):
    run = big_run(cast.plan, 120)
    client = client_for(cast.alice)
    pages = [table(client, run, sort="ttft", page=p) for p in (1, 2, 3)]
    seen = [pk for page in pages for pk in page]
    assert len(seen) == len(set(seen)) == 120
    junk = {"sort": "drop table", "outcome": "nope", "bucket": "99k", "variant": "x", "page": "-1"}
    assert table(client, run, **junk) == table(client, run)


def test_the_requests_table_counts_from_the_summary_or_up_to_a_cap(cast, client_for, monkeypatch):
    run = big_run(cast.plan, 120)
    assert run.summary["records_stored"] == 120
    client = client_for(cast.alice)
    url = reverse("run_requests", args=[run.pk])
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    counts = [
        q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"] and "requestrecord" in q["sql"]
    ]
    assert counts == [] and "120 requests, page 1 of 3" in response.content.decode()
    # a filter is counted, up to the cap: past it the table says so and pages through the first rows
    monkeypatch.setattr("benchmarks.selectors.requests.COUNT_CAP", 60)
    html = client.get(url, {"outcome": "success"}).content.decode()
    assert "60+ requests (counted up to 60" in html and "page 1 of 2" in html
    failed = RequestRecord.objects.filter(run=run).exclude(outcome="success").count()
    assert f">{failed} requests<" in client.get(url, {"outcome": "failed"}).content.decode().replace(
        "</p>", "<"
    )
    # once its records are purged, the stored number no longer speaks for the table
    RequestRecord.objects.filter(run=run).delete()
    Run.objects.filter(pk=run.pk).update(records_purged_at=timezone.now())
    assert "0 requests" in client.get(url).content.decode()


def test_a_variant_filter_shows_that_variant_only(cast, client_for):
    run = big_run(cast.plan, 40)
    Run.objects.filter(pk=run.pk).update(spec={**run.spec, "variants": [{}, {}]})
    RequestRecord.objects.filter(run=run, request_id__in=["r1-0", "r2-0"]).update(variant=1)
    rows = table(client_for(cast.alice), run, variant="1")
    assert sorted(RequestRecord.objects.get(pk=pk).request_id for pk in rows) == ["r1-0", "r2-0"]


def test_a_request_page_shows_packets_gaps_usage_error_and_answer(cast, client_for):
    run = big_run(cast.plan, 30)
    client = client_for(cast.alice)
    failed = RequestRecord.objects.get(run=run, request_id="r3-0")
    html = client.get(reverse("run_request_detail", args=[run.pk, failed.pk])).content.decode()
    assert "HTTP 503: upstream busy" in html and "answer 3" in html
    assert html.count("<td>answer</td>") == 129 and "5.250, 5.500" in html
    assert "usage_output_tokens" in html.split('id="request-usage"')[1]
    carol = Client()
    carol.force_login(cast.carol)
    assert carol.get(reverse("run_request_detail", args=[run.pk, failed.pk])).status_code == 404
    assert carol.get(reverse("run_requests", args=[run.pk])).status_code == 404
    other = big_run(cast.plan, 5, seed=9)  # a record of another run is not this run's request
    assert client.get(reverse("run_request_detail", args=[other.pk, failed.pk])).status_code == 404


# --- exports -----------------------------------------------------------------------------------------


def test_the_jsonl_export_streams_every_field_of_every_record(cast, client_for):
    run = big_run(cast.plan, 60)
    response = client_for(cast.alice).get(reverse("run_export_jsonl", args=[run.pk]))
    assert isinstance(response, StreamingHttpResponse)
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    stored = {r.pk: r.data for r in RequestRecord.objects.filter(run=run)}
    assert len(lines) == len(stored) == 60
    for line in lines:
        record_id = line.pop("record_id")
        assert line == stored[record_id]
    first = lines[0]
    for key in (
        "packets",
        "itl_ms",
        "variant",
        "level",
        "usage_output_tokens",
        "client_output_tokens",
        "correct",
    ):
        assert key in first, key
    assert len(first["itl_ms"]) == 128 and len(first["packets"]) == 129 and first["answer_text"]


def test_a_jsonl_line_splices_the_record_id_into_the_stored_text():
    from benchmarks.presenters.records import jsonl_lines

    rows = [(1, "{}"), (2, '{"a": "x\\ny", "b": [1, 2]}')]
    assert [json.loads(line) for line in jsonl_lines(iter(rows))] == [
        {"record_id": 1},
        {"record_id": 2, "a": "x\ny", "b": [1, 2]},
    ]


def test_the_api_streams_the_jsonl_and_the_csv_for_the_tokens_team_only(cast):
    run = big_run(cast.plan, 25)
    _, token = api_token_create(team=cast.team_a, by=cast.bob, name="ci")
    _, other = api_token_create(team=cast.team_b, by=cast.carol, name="b")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    jsonl = api.get(reverse("api_run_records_jsonl", args=[run.pk]))
    assert isinstance(jsonl, StreamingHttpResponse)
    assert len(b"".join(jsonl.streaming_content).splitlines()) == 25
    csv = api.get(reverse("api_run_requests_csv", args=[run.pk]))
    assert isinstance(csv, StreamingHttpResponse)
    assert len(b"".join(csv.streaming_content).decode().splitlines()) == 26
    assert api.get(reverse("api_run", args=[run.pk])).json()["records_url"] == reverse(
        "api_run_records_jsonl", args=[run.pk]
    )
    # a client asking for the download's own type gets it, not 406
    typed = api.get(reverse("api_run_requests_csv", args=[run.pk]), HTTP_ACCEPT="text/csv")
    assert typed.status_code == 200 and typed["Content-Type"].startswith("text/csv")
    ndjson = api.get(reverse("api_run_records_jsonl", args=[run.pk]), HTTP_ACCEPT="application/x-ndjson")
    assert ndjson.status_code == 200
    stranger = Client(HTTP_AUTHORIZATION=f"Bearer {other}")
    assert stranger.get(reverse("api_run_records_jsonl", args=[run.pk])).status_code == 404
    missing = stranger.get(reverse("api_run_requests_csv", args=[run.pk]), HTTP_ACCEPT="text/csv")
    assert missing.status_code == 404 and "detail" in missing.json()  # errors still come as JSON
    assert Client().get(reverse("api_run_records_jsonl", args=[run.pk])).status_code == 401


# --- notes, delete, run again ---------------------------------------------------------------------------


def test_members_write_notes_viewers_read_them(cast, client_for):
    run = cast.run
    bob = client_for(cast.bob)
    response = bob.post(reverse("run_notes", args=[run.pk]), {"notes": "  after the vLLM 0.6 upgrade  "})
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.notes == "after the vLLM 0.6 upgrade"
    vera = Client()
    vera.force_login(cast.vera)
    assert "after the vLLM 0.6 upgrade" in vera.get(reverse("run_detail", args=[run.pk])).content.decode()
    assert vera.post(reverse("run_notes", args=[run.pk]), {"notes": "x"}).status_code == 403
    too_long = bob.post(reverse("run_notes", args=[run.pk]), {"notes": "x" * 10_001}, follow=True)
    assert "at most 10000 characters" in too_long.content.decode()
    run.refresh_from_db()
    assert run.notes == "after the vLLM 0.6 upgrade"


def test_delete_says_what_uses_the_run_then_hides_it_and_removes_records_in_the_background(
    cast, client_for, django_capture_on_commit_callbacks, monkeypatch
):
    run = big_run(cast.plan, 40)
    queued = []
    monkeypatch.setattr("benchmarks.services.runs.delete.enqueue_on_commit", lambda *a: queued.append(a))
    Comparison.objects.create(team=cast.team_a, title="fp8 vs int4", run_ids=[cast.run.pk, run.pk])
    PlanSchedule.objects.create(team=cast.team_a, plan=cast.plan, baseline_run=run, every="nightly")
    bob = client_for(cast.bob)
    confirm = bob.get(reverse("run_delete", args=[run.pk])).content.decode()
    uses = confirm.split('id="delete-uses"')[1]
    assert "fp8 vs int4" in uses and "baseline" in uses
    vera = Client()
    vera.force_login(cast.vera)
    assert vera.post(reverse("run_delete", args=[run.pk])).status_code == 403

    assert bob.post(reverse("run_delete", args=[run.pk])).status_code == 302
    assert bob.get(reverse("run_detail", args=[run.pk])).status_code == 404
    assert f"/runs/{run.pk}/" not in bob.get(reverse("run_list")).content.decode()
    assert queued == [(queued[0][0], run.pk)] and queued[0][0].value == "benchmarks.tasks.delete_run"
    assert RequestRecord.objects.filter(run_id=run.pk).count() == 40  # not in the request
    assert run_delete_execute(run_id=run.pk, chunk=7) == 40
    assert not RequestRecord.objects.filter(run_id=run.pk).exists()
    assert not Run.all_objects.filter(pk=run.pk).exists()
    assert PlanSchedule.objects.get(plan=cast.plan).baseline_run is None
    assert run_delete_execute(run_id=run.pk) == 0  # idempotent


def test_a_running_run_is_not_deleted_and_the_background_task_never_touches_a_live_run(cast, client_for):
    Run.objects.filter(pk=cast.run.pk).update(status=Run.Status.RUNNING)
    response = client_for(cast.alice).post(reverse("run_delete", args=[cast.run.pk]), follow=True)
    assert "cancel it first" in response.content.decode()
    assert run_delete_execute(run_id=cast.run.pk) == 0
    assert Run.objects.filter(pk=cast.run.pk).exists() and cast.run.records.exists()


def test_a_run_of_a_repeated_set_still_going_is_not_deleted(cast, client_for):
    # the first of 3 repetitions has finished; the next ones have not started yet
    Run.objects.filter(pk=cast.run.pk).update(
        spec={**cast.run.spec, "repeat": 3}, status=Run.Status.FINISHED, ended_at=timezone.now()
    )
    response = client_for(cast.alice).post(reverse("run_delete", args=[cast.run.pk]), follow=True)
    assert "repeated set that is still going" in response.content.decode()
    assert Run.objects.filter(pk=cast.run.pk).exists()


def test_a_deleted_run_whose_task_was_lost_is_sent_again_by_housekeeping(cast, monkeypatch):
    from benchmarks.services.runs import reap

    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(reap, "enqueue", lambda *a, **kw: sent.append(a))
    Run.objects.filter(pk=cast.run.pk).update(deleted_at=timezone.now() - timedelta(hours=1))
    reap.runs_reap_stale()
    assert (reap.TaskName.DELETE_RUN, cast.run.pk) in sent


def test_run_again_starts_exactly_the_stored_snapshot(cast, client_for, monkeypatch):
    queued = []
    monkeypatch.setattr("benchmarks.services.runs.start.enqueue_on_commit", lambda *a: queued.append(a))
    run = big_run(cast.plan, 10)
    Run.objects.filter(pk=run.pk).update(spec={**run.spec, "run_started_epoch": 1.0, "repeat": 3})
    run.refresh_from_db()
    cast.plan.max_tokens = 999  # the plan changed since: the snapshot is what runs
    cast.plan.save()
    response = client_for(cast.bob).post(reverse("run_again", args=[run.pk]))
    again = Run.objects.exclude(pk__in=[run.pk, cast.run.pk]).get(plan=cast.plan, status=Run.Status.QUEUED)
    assert response["Location"] == reverse("run_detail", args=[again.pk])
    assert again.spec == {k: v for k, v in run.spec.items() if k not in ("run_started_epoch", "repeat")}
    assert (
        '"max_tokens": 999' not in json.dumps(again.spec)
        and again.dataset_version_id == run.dataset_version_id
    )
    assert queued and queued[0][1] == again.pk


def test_run_again_refuses_an_endpoint_that_now_points_elsewhere(cast, client_for, monkeypatch):
    monkeypatch.setattr("benchmarks.services.runs.start.enqueue_on_commit", lambda *a: None)
    run = big_run(cast.plan, 5)
    cast.endpoint.base_url = "http://elsewhere.example:8000/v1"
    cast.endpoint.save()
    before = Run.objects.count()
    response = client_for(cast.alice).post(reverse("run_again", args=[run.pk]), follow=True)
    assert "its key is not sent to another server" in response.content.decode()
    assert Run.objects.count() == before
    vera = Client()
    vera.force_login(cast.vera)
    assert vera.post(reverse("run_again", args=[run.pk])).status_code == 403


def test_run_again_refuses_a_snapshot_past_todays_limits(cast, client_for, monkeypatch, settings):
    monkeypatch.setattr("benchmarks.services.runs.start.enqueue_on_commit", lambda *a: None)
    run = big_run(cast.plan, 5)
    profile = {**run.spec["profile"], "kind": "users", "users": 50}
    Run.objects.filter(pk=run.pk).update(spec={**run.spec, "profile": profile})
    settings.LIMIT_USERS = 10  # lowered since the run
    before = Run.objects.count()
    response = client_for(cast.alice).post(reverse("run_again", args=[run.pk]), follow=True)
    assert "LIMIT_USERS" in response.content.decode()
    assert Run.objects.count() == before


def test_the_migration_fills_the_count_columns_of_records_stored_before_them(cast):
    import importlib

    backfill_sql = importlib.import_module("benchmarks.migrations.0015_run_page").BACKFILL_SQL
    data = {
        "variant": 1,
        "usage_output_tokens": 70,
        "client_output_tokens": 64.0,
        "client_input_tokens": "n/a",
    }
    old = RequestRecord.objects.create(run=cast.run, request_id="old", outcome="success", data=data)
    assert old.usage_output_tokens is None  # as stored before the columns existed
    with connection.cursor() as cursor:
        cursor.execute(backfill_sql)
    old.refresh_from_db()
    assert (old.variant, old.usage_output_tokens, old.client_output_tokens) == (1, 70, 64)
    assert old.client_input_tokens is None and old.usage_input_tokens is None


def test_the_csv_rows_are_the_same_when_the_database_cannot_drop_json_keys(cast, monkeypatch):
    """The embedded mode's SQLite has no jsonb ``-``: the bulky keys go in Python, same rows."""
    from benchmarks.selectors import requests as requests_selectors

    run = big_run(cast.plan, 40)
    in_sql = list(requests_selectors.run_record_fields(run=run))
    monkeypatch.setattr(requests_selectors.connection, "vendor", "sqlite")
    in_python = list(requests_selectors.run_record_fields(run=run))
    assert in_python == in_sql and len(in_sql) == 40
    assert not any(key in row for row in in_python for key in requests_selectors.BULKY)
