from __future__ import annotations

from django.conf import settings
from django.db import models

from benchmarks.models.plans import Plan
from benchmarks.models.runs import Run
from benchmarks.models.teams import TeamOwned


class PlanSchedule(TeamOwned):
    """Run a plan hourly or nightly and hold each run against the baseline run.

    A regression is any overall metric worse than the baseline by more than ``threshold_pct`` (and, when
    ``noise_aware``, outside run-to-run noise), or any broken rule (``ttft_ms.p99>+10%``, one per line).
    """

    class Every(models.TextChoices):
        OFF = "off", "Off"
        HOURLY = "hourly", "Hourly"
        NIGHTLY = "nightly", "Nightly"

    plan = models.OneToOneField(Plan, on_delete=models.CASCADE, related_name="schedule")
    every = models.CharField(max_length=8, choices=Every.choices, default=Every.OFF)
    hour_utc = models.PositiveSmallIntegerField(default=2, help_text="nightly: the hour (UTC) to start")
    baseline_run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    threshold_pct = models.FloatField(default=10.0)
    noise_aware = models.BooleanField(default=True, help_text="ignore differences inside run-to-run noise")
    rules = models.TextField(blank=True, help_text="one per line, e.g. ttft_ms.p99>+10% or success_rate<0.99")
    webhook_url = models.URLField(max_length=500, blank=True)
    email_to = models.CharField(max_length=500, blank=True, help_text="comma-separated addresses")
    next_run_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.plan} {self.every}"

    @property
    def rule_lines(self) -> list[str]:
        return [line.strip() for line in self.rules.splitlines() if line.strip()]


class RunCheck(TeamOwned):
    """One scheduled run held against its baseline: pending until the run ends, then ok or an alert."""

    class Status(models.TextChoices):
        PENDING = "pending"
        OK = "ok"
        REGRESSED = "regressed"
        ERROR = "error"  # no baseline, or the run produced no summary

    schedule = models.ForeignKey(PlanSchedule, on_delete=models.CASCADE, related_name="checks")
    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="schedule_check")
    baseline_run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    regressions = models.JSONField(default=list)
    rule_results = models.JSONField(default=list)
    message = models.TextField(blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    notified = models.JSONField(default=dict)  # {"webhook": "200", "email": "sent"} or the error
    dismissed = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]

    @property
    def is_alert(self) -> bool:
        return self.status in (self.Status.REGRESSED, self.Status.ERROR)
