"""Scheduled runs: started once when due, held against the baseline, alerts on the page, by webhook
(a real HTTP server on 127.0.0.1) and by e-mail (Django's locmem backend)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from benchmarks.models import PlanSchedule, Run, RunCheck
from benchmarks.services.schedules import (
    checks_evaluate_ended,
    next_run_after,
    schedules_start_due,
    schedules_tick,
)
from tests.benchmarks.compare_runs import finished_run


@pytest.fixture
def no_dispatch(monkeypatch):
    monkeypatch.setattr("benchmarks.services.runs.start.enqueue_on_commit", lambda *a, **kw: None)


@pytest.fixture
def webhook():
    """A local HTTP server that keeps every JSON body POSTed to it."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
    server.server_close()
    thread.join(5)


def schedule_for(cast, baseline: Run, **fields) -> PlanSchedule:
    defaults = {"every": "hourly", "threshold_pct": 10.0, "noise_aware": True, "created_by": cast.alice}
    return PlanSchedule.objects.create(
        team=cast.team_a, plan=cast.plan, baseline_run=baseline, **(defaults | fields)
    )


def scheduled(schedule: PlanSchedule, run: Run) -> RunCheck:
    return RunCheck.objects.create(
        team=schedule.team, schedule=schedule, run=run, baseline_run=schedule.baseline_run
    )


def test_next_run_times():
    now = datetime(2026, 3, 1, 14, 25, tzinfo=UTC)
    assert next_run_after("hourly", 2, now) == datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
    assert next_run_after("nightly", 2, now) == datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    assert next_run_after("nightly", 20, now) == datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
    assert next_run_after("off", 2, now) is None


@pytest.mark.parametrize("leave", ["removed", "viewer"])
def test_a_schedule_whose_creator_may_no_longer_run_it_is_turned_off(cast, no_dispatch, leave):
    from benchmarks.models import Membership

    schedule = schedule_for(
        cast, cast.run, created_by=cast.bob, next_run_at=timezone.now() - timedelta(minutes=1)
    )
    membership = Membership.objects.get(team=cast.team_a, user=cast.bob)
    if leave == "removed":
        membership.delete()
    else:
        membership.role = Membership.Role.VIEWER
        membership.save()
    assert schedules_start_due(now=timezone.now()) == []
    schedule.refresh_from_db()
    assert schedule.every == "off" and schedule.next_run_at is None
    assert not Run.objects.filter(plan=cast.plan, created_by=cast.bob).exists()


def test_due_schedule_starts_one_run_however_often_beat_looks(cast, no_dispatch):
    schedule = schedule_for(cast, cast.run, next_run_at=timezone.now() - timedelta(minutes=1))
    started = schedules_start_due(now=timezone.now())
    assert len(started) == 1 and started[0].plan == cast.plan and started[0].created_by == cast.alice
    assert schedules_start_due(now=timezone.now()) == []  # claimed: next_run_at moved to the next hour
    schedule.refresh_from_db()
    assert schedule.next_run_at > timezone.now()
    check = RunCheck.objects.get()
    assert check.run == started[0] and check.status == "pending" and check.baseline_run == cast.run
    assert checks_evaluate_ended() == []  # the run has not ended yet


def test_slower_scheduled_run_raises_an_alert_by_webhook_and_email(cast, client_for, webhook):
    url, received = webhook
    baseline = finished_run(cast.plan, seed=1)
    schedule = schedule_for(cast, baseline, webhook_url=url, email_to="oncall@example.com, perf@example.com")
    check = scheduled(schedule, finished_run(cast.plan, seed=2, ttft_ms=160))
    assert schedules_tick()["checked"] == 1
    check.refresh_from_db()
    assert check.status == "regressed" and "ttft_ms.p50" in check.message
    assert any(r["path"] == "ttft_ms.p50" and r["noise"] is False for r in check.regressions)
    (body,) = received
    assert body["event"] == "llmperf.regression" and body["run"]["id"] == check.run_id
    assert body["baseline"]["id"] == baseline.pk and body["comparison_url"].endswith(
        f"{baseline.pk},{check.run_id}"
    )
    assert {"path", "pct", "baseline", "value"} <= set(body["regressions"][0])
    (message,) = mail.outbox
    assert message.to == ["oncall@example.com", "perf@example.com"] and "regressed" in message.subject
    assert check.notified == {"webhook": "HTTP 204", "email": "sent to 2"}
    assert checks_evaluate_ended() == []  # checked once, notified once

    plan_page = client_for(cast.bob).get(reverse("plan_detail", args=[cast.plan.pk])).content.decode()
    assert 'id="plan-alert"' in plan_page and f"#{check.run_id}" in plan_page
    assert '<b class="badge">1</b>' in plan_page  # in the navigation, on every page
    alice = client_for(cast.alice)
    assert alice.post(reverse("alert_dismiss", args=[check.pk])).status_code == 302
    assert 'id="plan-alert"' not in alice.get(reverse("plan_detail", args=[cast.plan.pk])).content.decode()
    assert client_for(cast.carol).post(reverse("alert_dismiss", args=[check.pk])).status_code == 404


def test_unchanged_run_passes_quietly(cast, webhook):
    url, received = webhook
    baseline = finished_run(cast.plan, seed=1)
    check = scheduled(
        schedule_for(cast, baseline, webhook_url=url, email_to="a@example.com"),
        finished_run(cast.plan, seed=2),
    )
    checks_evaluate_ended()
    check.refresh_from_db()
    assert check.status == "ok", check.message
    assert received == [] and mail.outbox == []


def test_rules_gate_too(cast):
    baseline = finished_run(cast.plan, seed=1)
    schedule = schedule_for(cast, baseline, threshold_pct=500, rules="success_rate<0.999\nttft_ms.p50>+1%")
    check = scheduled(schedule, finished_run(cast.plan, seed=1, ttft_ms=104))  # same requests, 4% slower
    checks_evaluate_ended()
    check.refresh_from_db()
    broken = {r["rule"]: r["broken"] for r in check.rule_results}
    assert broken == {"success_rate<0.999": False, "ttft_ms.p50>+1%": True} and check.status == "regressed"


def test_failed_scheduled_run_is_an_alert(cast):
    failed = Run.objects.create(
        team=cast.team_a,
        plan=cast.plan,
        plan_name="p",
        endpoint_name="e",
        status="failed",
        reason="no worker",
    )
    check = scheduled(schedule_for(cast, cast.run), failed)
    checks_evaluate_ended()
    check.refresh_from_db()
    assert check.status == "error" and "no worker" in check.message


def test_schedule_form(cast, client_for):
    client = client_for(cast.alice)
    url = reverse("plan_schedule", args=[cast.plan.pk])
    bad = client.post(
        url, {"every": "nightly", "hour_utc": 3, "threshold_pct": 10, "rules": "ttft_ms.p99>10%"}
    )
    text = bad.content.decode()
    assert bad.status_code == 400 and "needs a sign" in text and "needs a baseline run" in text
    good = client.post(
        url,
        {
            "every": "nightly",
            "hour_utc": 3,
            "threshold_pct": 10,
            "baseline_run": cast.run.pk,
            "rules": "success_rate<0.99",
        },
    )
    assert good.status_code == 302
    schedule = PlanSchedule.objects.get(plan=cast.plan)
    assert schedule.next_run_at.hour == 3 and schedule.created_by == cast.alice
    assert "Nightly at 3:00 UTC" in client.get(reverse("plan_detail", args=[cast.plan.pk])).content.decode()
    assert client_for(cast.vera).get(url).status_code == 403
    assert client_for(cast.carol).get(url).status_code == 404


# ---------------------------------------------------------------------------- repeated scheduled plans


def _finish(run: Run, ttft: float, status: str = Run.Status.FINISHED) -> Run:
    run.status, run.ended_at = status, timezone.now()
    run.summary = {
        "requests": {"total": 10, "succeeded": 10, "failed": 0},
        "throughput": {"qpm": 600.0, "output_tokens_per_s": 100.0},
        "ttft_ms": {"p50": ttft, "p99": ttft * 2, "count": 10},
        "success_rate": 1.0,
    }
    run.save()
    return run


def _scheduled_set(cast, ttfts: list[float], *, fail_at: int | None = None, **schedule_fields) -> RunCheck:
    """A plan with repeat N started by its schedule; each repetition ends with the given TTFT and the
    check is looked at after each one (it must wait for the last)."""
    from benchmarks.services.runs.start import run_repeat_next
    from benchmarks.services.schedules import scheduled_run_start

    cast.plan.repeat = len(ttfts)
    cast.plan.save()
    baseline = _finish(Run.objects.create(team=cast.team_a, plan=cast.plan, spec={}), 100.0)
    schedule = schedule_for(cast, baseline, **schedule_fields)
    run = scheduled_run_start(schedule=schedule)
    for i, ttft in enumerate(ttfts):
        _finish(run, ttft, Run.Status.FAILED if i == fail_at else Run.Status.FINISHED)
        if i == fail_at:
            break
        if i < len(ttfts) - 1:
            assert checks_evaluate_ended() == [], "checked before the set's last repetition ended"
            run = run_repeat_next(run=run)
    assert run_repeat_next(run=run) is None
    assert len(checks_evaluate_ended()) == 1
    return RunCheck.objects.get(schedule=schedule)


def test_a_repeated_scheduled_plan_is_checked_once_on_the_mean_of_all_its_repetitions(cast, no_dispatch):
    check = _scheduled_set(cast, [130.0, 131.0, 129.0])  # 30 % slower, every time: a regression
    assert check.status == "regressed" and "mean of 3 repetitions" in check.message
    ttft = next(r for r in check.regressions if r["path"] == "ttft_ms.p50")
    assert ttft["value"] == 130.0 and ttft["runs"] == 3 and ttft["noise"] is False
    assert ttft["ci95"][0] > 100.0  # the interval excludes the baseline


def test_a_repeated_plan_whose_mean_is_worse_only_within_noise_passes(cast, no_dispatch):
    check = _scheduled_set(cast, [60.0, 200.0, 130.0])  # mean 130, interval holding the baseline's 100
    assert check.status == "ok" and "across 3 repetitions" in check.message


def test_a_repeated_plans_rules_read_the_sets_mean(cast, no_dispatch):
    check = _scheduled_set(cast, [100.0, 102.0, 104.0], rules="ttft_ms.p50>101")
    assert check.status == "regressed" and "ttft_ms.p50>101: 102" in check.message


def test_a_repetition_that_failed_ends_the_set_and_alerts(cast, no_dispatch):
    check = _scheduled_set(cast, [100.0, 100.0, 100.0], fail_at=1)
    assert check.status == "error" and "Only 1 of 3 repetitions finished" in check.message
