"""Scheduled runs and regression alerts.

Celery beat calls :func:`schedules_tick` every minute. It starts every plan whose time has come
(claimed by a conditional UPDATE of ``next_run_at``, so two beats never start the same run twice) and
checks every scheduled run that ended against the plan's baseline run: any broken rule, or any overall
metric worse by more than the threshold (outside run-to-run noise when asked), is an alert, shown in
the dashboard and sent to the plan's webhook and e-mail addresses.
"""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import transaction
from django.forms import ModelForm
from django.urls import reverse
from django.utils import timezone

from benchmarks import bridge
from benchmarks.models import Plan, PlanSchedule, Run, RunCheck
from benchmarks.selectors.runs import repeat_runs, repeat_set_ended
from benchmarks.services.runs.start import run_start
from benchmarks.services.samples import samples_pair
from runner import TargetDenied, TargetPolicy

log = logging.getLogger(__name__)
WEBHOOK_TIMEOUT_S = 10.0


def next_run_after(every: str, hour_utc: int, now: datetime) -> datetime | None:
    """Hourly: the next full hour. Nightly: the next ``hour_utc``:00 UTC. Off: never."""
    if every == PlanSchedule.Every.HOURLY:
        return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if every == PlanSchedule.Every.NIGHTLY:
        at = now.astimezone(UTC).replace(hour=hour_utc, minute=0, second=0, microsecond=0)
        return at if at > now else at + timedelta(days=1)
    return None


@transaction.atomic
def plan_schedule_save(*, plan: Plan, form: ModelForm, by: AbstractBaseUser) -> PlanSchedule:
    schedule: PlanSchedule = form.save(commit=False)
    schedule.plan, schedule.team = plan, plan.team
    if schedule.created_by_id is None:
        schedule.created_by = by
    schedule.next_run_at = next_run_after(schedule.every, schedule.hour_utc, timezone.now())
    schedule.save()
    return schedule


def schedules_tick(*, now: datetime | None = None) -> dict[str, int]:
    """The beat task's body: start what is due, then check what has ended."""
    started = schedules_start_due(now=now or timezone.now())
    checked = checks_evaluate_ended()
    return {"started": len(started), "checked": len(checked)}


def schedules_start_due(*, now: datetime) -> list[Run]:
    runs = []
    due = PlanSchedule.objects.filter(next_run_at__lte=now).exclude(every=PlanSchedule.Every.OFF)
    for schedule in due.select_related("plan", "created_by"):
        following = next_run_after(schedule.every, schedule.hour_utc, now)
        claimed = PlanSchedule.objects.filter(pk=schedule.pk, next_run_at=schedule.next_run_at).update(
            next_run_at=following
        )
        if not claimed:
            continue  # another beat started this one
        if not schedule_owner_can_run(schedule):
            # its creator left the team (or may no longer write): it must not run in their name
            PlanSchedule.objects.filter(pk=schedule.pk).update(every=PlanSchedule.Every.OFF, next_run_at=None)
            log.warning("schedule of plan %s turned off: its creator may no longer run it", schedule.plan_id)
            continue
        try:
            runs.append(scheduled_run_start(schedule=schedule))
        except Exception:
            log.exception("scheduled run of plan %s could not start", schedule.plan_id)
    return runs


def schedule_owner_can_run(schedule: PlanSchedule) -> bool:
    """The schedule's creator is still a member of its team with the right to start runs."""
    from benchmarks.models import Membership

    if schedule.created_by_id is None:
        return False
    membership = Membership.objects.filter(team_id=schedule.team_id, user_id=schedule.created_by_id).first()
    return bool(membership and membership.can_write)


@transaction.atomic
def scheduled_run_start(*, schedule: PlanSchedule) -> Run:
    run = run_start(plan=schedule.plan, by=schedule.created_by)  # type: ignore[arg-type]
    RunCheck.objects.create(
        team=schedule.team, schedule=schedule, run=run, baseline_run=schedule.baseline_run
    )
    return run


# -------------------------------------------------------------------------------------------- checking


def checks_evaluate_ended() -> list[RunCheck]:
    pending = RunCheck.objects.filter(status=RunCheck.Status.PENDING).exclude(run__status__in=Run.ACTIVE)
    done = []
    for check in pending.select_related("run", "baseline_run", "schedule", "schedule__plan"):
        if check_evaluate(check=check):
            done.append(check)
    return done


def check_evaluate(*, check: RunCheck) -> bool:
    """Hold the ended run (a repeated plan: the whole set, once its last repetition ended) against the
    baseline; only the caller that flips it from pending notifies."""
    result = check_result(check.run, check.baseline_run, check.schedule)
    if result is None:
        return False  # the set's later repetitions are still to run
    claimed = RunCheck.objects.filter(pk=check.pk, status=RunCheck.Status.PENDING).update(
        **result, checked_at=timezone.now()
    )
    if not claimed:
        return False
    check.refresh_from_db()
    if check.is_alert:
        check_notify(check=check)
    return True


def check_result(run: Run, baseline: Run | None, schedule: PlanSchedule) -> dict[str, Any] | None:
    from runner import check_rules, parse_rule, regressions

    if int((run.spec or {}).get("repeat") or 1) > 1:
        return set_check_result(run, baseline, schedule)
    if not run.summary or run.status == Run.Status.FAILED:
        return _error(f"Scheduled run #{run.pk} ended {run.status} without a usable summary. {run.reason}")
    if baseline is None or not baseline.summary:
        return _error("The plan has no baseline run to compare with; pick one in its schedule.")
    samples = samples_pair(baseline, run) if schedule.noise_aware else None
    found = regressions(run.summary, baseline.summary, threshold_pct=schedule.threshold_pct, samples=samples)
    rules = [
        r.to_dict()
        for r in check_rules(run.summary, [parse_rule(x) for x in schedule.rule_lines], baseline.summary)
    ]
    broken = [r["message"] for r in rules if r["broken"]]
    worse = [f"{r['label']} ({r['path']}) {r['pct']:+.1f}% vs baseline" for r in found]
    status = RunCheck.Status.REGRESSED if broken or found else RunCheck.Status.OK
    message = "; ".join([*broken, *worse]) or f"No regression against run #{baseline.pk}."
    return {"status": status, "regressions": found, "rule_results": rules, "message": message}


def set_check_result(first: Run, baseline: Run | None, schedule: PlanSchedule) -> dict[str, Any] | None:
    """A repeated plan's check: None until the set is over; then every headline metric's mean over
    the finished repetitions against the baseline (its set's mean, when the baseline was repeated
    too), a regression counting only outside the intervals when the schedule is noise-aware; rules
    read the set's mean. A repetition that did not finish makes the check an error (an alert), with
    what the others measured still compared."""
    from runner import check_rules, parse_rule, repeat_mean_summary, repeat_regressions

    runs, over = repeat_set_ended(run=first)
    if not over:
        return None
    total = int(first.spec.get("repeat") or 1)
    done = [r for r in runs if r.status == Run.Status.FINISHED and r.summary]
    if not done:
        return _error(f"None of the {total} repetitions from run #{first.pk} finished. {runs[-1].reason}")
    if baseline is None or not baseline.summary:
        return _error("The plan has no baseline run to compare with; pick one in its schedule.")
    base_set = [r for r in repeat_runs(run=baseline) if r.status == Run.Status.FINISHED and r.summary]
    base = [r.summary for r in base_set] or [baseline.summary]
    mine = [r.summary for r in done]
    found = repeat_regressions(
        mine, base, threshold_pct=schedule.threshold_pct, noise_aware=schedule.noise_aware
    )
    rules = [
        r.to_dict()
        for r in check_rules(
            repeat_mean_summary(mine),
            [parse_rule(x) for x in schedule.rule_lines],
            repeat_mean_summary(base),
        )
    ]
    broken = [f"{r['message']} (mean of {len(mine)} repetitions)" for r in rules if r["broken"]]
    worse = [
        f"{r['label']} ({r['path']}) {r['pct']:+.1f}% vs baseline, mean of {r['runs']} repetitions"
        + (f" [95% {r['ci95'][0]:.4g}–{r['ci95'][1]:.4g}]" if r["ci95"] else "")
        for r in found
    ]
    unfinished = [f"#{r.pk} {r.status}" for r in runs if r not in done]
    short = (
        [f"Only {len(done)} of {total} repetitions finished ({', '.join(unfinished)})."]
        if len(done) < total
        else []
    )
    status = (
        RunCheck.Status.ERROR
        if short
        else RunCheck.Status.REGRESSED
        if broken or found
        else RunCheck.Status.OK
    )
    of = f"across {len(done)} repetitions (mean, 95% interval)"
    message = "; ".join([*short, *broken, *worse]) or f"No regression against run #{baseline.pk} {of}."
    return {"status": status, "regressions": found, "rule_results": rules, "message": message}


def _error(message: str) -> dict[str, Any]:
    return {"status": RunCheck.Status.ERROR, "regressions": [], "rule_results": [], "message": message}


# ------------------------------------------------------------------------------------------ notifying


def alert_payload(check: RunCheck) -> dict[str, Any]:
    site = settings.SITE_URL.rstrip("/")
    plan = check.schedule.plan
    base = check.baseline_run
    compare = f"{site}{reverse('compare')}?runs={base.pk},{check.run_id}" if base else None
    return {
        "event": "llmperf.regression" if check.status == RunCheck.Status.REGRESSED else "llmperf.check_error",
        "status": check.status,
        "message": check.message,
        "plan": {"id": plan.pk, "name": plan.name},
        "run": {"id": check.run_id, "url": f"{site}{reverse('run_detail', args=[check.run_id])}"},
        "baseline": {"id": base.pk} if base else None,
        "comparison_url": compare,
        "regressions": check.regressions,
        "rules": check.rule_results,
        "checked_at": check.checked_at.isoformat() if check.checked_at else None,
    }


def check_notify(*, check: RunCheck) -> dict[str, str]:
    """Webhook (POST JSON) and e-mail, each best effort; what happened is kept on the check."""
    schedule = check.schedule
    payload = alert_payload(check)
    notified: dict[str, str] = {}
    if schedule.webhook_url:
        notified["webhook"] = _post(schedule.webhook_url, payload)
    addresses = [a.strip() for a in schedule.email_to.split(",") if a.strip()]
    if addresses:
        notified["email"] = _mail(addresses, payload)
    RunCheck.objects.filter(pk=check.pk).update(notified=notified)
    return notified


def check_dismiss(*, check: RunCheck) -> None:
    """An alert someone has seen: it leaves the open-alert count and the plan page."""
    RunCheck.objects.filter(pk=check.pk).update(dismissed=True)


def _post(url: str, payload: dict[str, Any]) -> str:
    """POST to the webhook through the same target policy as load; only its host is ever logged
    (a webhook URL often carries a token)."""
    host = urlsplit(url).hostname or "?"
    try:
        webhook_allowed(url)
        response = httpx.post(url, json=payload, timeout=WEBHOOK_TIMEOUT_S, follow_redirects=False)
    except TargetDenied as exc:
        log.warning("webhook to %s refused: %s", host, exc)
        return "refused by the target policy"
    except (httpx.HTTPError, OSError) as exc:
        log.warning("webhook to %s failed: %s", host, type(exc).__name__)
        return f"failed: {type(exc).__name__}"
    return f"HTTP {response.status_code}"


def webhook_allowed(url: str) -> None:
    """Raises TargetDenied when any address the webhook's host resolves to is outside the policy."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetDenied(f"not an http(s) URL: {parts.scheme or '?'}://…")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    policy = TargetPolicy.from_dict(bridge.target_policy())
    for info in socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP):
        policy.check(parts.hostname, str(info[4][0]), port)


def _mail(addresses: list[str], payload: dict[str, Any]) -> str:
    subject = f"[llmperf] {payload['plan']['name']}: run #{payload['run']['id']} {payload['status']}"
    lines = [payload["message"], "", f"Run: {payload['run']['url']}"]
    if payload["comparison_url"]:
        lines.append(f"Comparison with the baseline: {payload['comparison_url']}")
    try:
        send_mail(subject, "\n".join(lines), None, addresses)
    except Exception as exc:  # SMTP down: the alert still shows in the dashboard
        log.warning("alert e-mail failed: %s", exc)
        return f"failed: {exc}"
    return f"sent to {len(addresses)}"
