from __future__ import annotations

from django.conf import settings
from django.db import models

from benchmarks.models.endpoints import Endpoint
from benchmarks.models.plans import Plan
from benchmarks.models.teams import TeamOwned


class RunManager(models.Manager["Run"]):
    """Runs as every page, list and lookup sees them: a run being deleted is gone at once (its
    records are removed in the background, ``services/runs/delete.py``)."""

    def get_queryset(self) -> models.QuerySet[Run]:
        return super().get_queryset().filter(deleted_at=None)


class Run(TeamOwned):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        CANCELLING = "cancelling"
        FINISHED = "finished"
        FAILED = "failed"
        PARTIAL = "partial"

    ACTIVE = (Status.QUEUED, Status.RUNNING, Status.CANCELLING)

    class Kind(models.TextChoices):
        LOAD = "load"  # a plan's load test: shards, an aggregator
        MIRROR = "mirror"  # a mirror session: one worker holds the listening socket (services/mirrors.py)

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.LOAD)
    plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    endpoint = models.ForeignKey(
        Endpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    # The exact dataset version the run sent (later versions never change what it measured).
    dataset_version = models.ForeignKey(
        "benchmarks.DatasetVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    plan_name = models.CharField(max_length=100)
    endpoint_name = models.CharField(max_length=100)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    reason = models.TextField(blank=True)
    # runner.spec.RunSpec.to_dict() with the API key blanked; the bridge adds the key per shard.
    spec = models.JSONField(default=dict)
    variant = models.JSONField(default=dict)
    variant_text = models.TextField(blank=True)  # "key=value ..." lowercased, for the tag filter
    shard_count = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # One aggregator per run: whoever holds the token merges deltas; the reaper hands it on if it dies.
    supervisor_token = models.CharField(max_length=40, blank=True)
    supervisor_heartbeat_at = models.DateTimeField(null=True, blank=True)
    live = models.JSONField(default=dict)  # runner.stats.LiveAggregate.to_dict()
    snapshot = models.JSONField(default=dict)  # LiveAggregate.snapshot(): totals so far
    summary = models.JSONField(default=dict)  # runner.summary.summarize() of every record
    # A plan with repeat N runs N times, one run after another: each later run points at the first.
    repeat_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="repetitions"
    )
    repeat_index = models.PositiveSmallIntegerField(default=0)
    # When the team's retention deleted the raw request records (summary, sample and seconds stay).
    records_purged_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)  # the team's own words on the run, editable on its page
    deleted_at = models.DateTimeField(null=True, blank=True)  # set on delete; the row goes in the background

    objects = RunManager()
    all_objects = models.Manager()  # the background delete's view, runs being deleted included

    class Meta:
        ordering = ["-created_at"]
        base_manager_name = "all_objects"

    def __str__(self) -> str:
        return f"Run {self.pk} of {self.plan_name}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def requests_total(self) -> int | None:
        """Measured requests: exact once summarised, the live count while running."""
        if hasattr(self, "head_requests_total"):  # read by selectors.runs.lean: no summary loaded
            if self.head_requests_total not in (None, "null"):  # SQLite: JSON null as text
                return int(self.head_requests_total)
            return (self.snapshot or {}).get("started")
        if self.summary:
            return (self.summary.get("requests") or {}).get("total")
        return (self.snapshot or {}).get("started")

    @property
    def ttft_p50(self) -> float | None:
        """The summary's TTFT median (lists show it; read without the summary when annotated)."""
        if hasattr(self, "head_ttft_p50"):
            return None if self.head_ttft_p50 in (None, "null") else float(self.head_ttft_p50)
        return ((self.summary or {}).get("ttft_ms") or {}).get("p50")

    @property
    def ws_group(self) -> str:
        return f"run-{self.pk}"


class Shard(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        FINISHED = "finished"
        CANCELLED = "cancelled"
        FAILED = "failed"
        DEAD = "dead"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="shards")
    index = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    target_worker = models.CharField(max_length=200, blank=True)
    hostname = models.CharField(max_length=200, blank=True)  # the worker that actually ran it
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.CharField(max_length=20, blank=True)
    error = models.TextField(blank=True)
    records_count = models.PositiveIntegerField(default=0)
    engine = models.JSONField(default=dict)
    summary = models.JSONField(default=dict)

    class Meta:
        ordering = ["index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="one_shard_per_index")]


class RequestRecord(models.Model):
    """One measured request; ``data`` is runner.records.RequestRecord.to_dict() (packets included)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="records")
    shard_index = models.PositiveIntegerField(default=0)
    request_id = models.CharField(max_length=100)
    prompt_id = models.CharField(max_length=200, blank=True)
    outcome = models.CharField(max_length=30, db_index=True)
    started_epoch = models.FloatField(default=0.0)
    ttft_ms = models.FloatField(null=True)
    e2e_ms = models.FloatField(null=True)
    tokens_per_s = models.FloatField(null=True)
    input_tokens = models.IntegerField(null=True)
    output_tokens = models.IntegerField(null=True)
    # what the run page's token audit and per-request table filter on, as columns so they never open
    # ``data`` (large, stored compressed) row by row
    variant = models.PositiveSmallIntegerField(default=0)
    usage_input_tokens = models.IntegerField(null=True)
    client_input_tokens = models.IntegerField(null=True)
    usage_output_tokens = models.IntegerField(null=True)
    client_output_tokens = models.IntegerField(null=True)
    data = models.JSONField(default=dict)
    # runner.columns.pack_series(data): its gaps and content chunks as float64 bytes, so finalize
    # summarises a big run without reading every packet back out of ``data``; NULL on older rows.
    series = models.BinaryField(null=True, editable=False)

    class Meta:
        ordering = ["started_epoch", "id"]
        indexes = [models.Index(fields=["run", "outcome", "started_epoch"], name="record_run_outcome")]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "shard_index", "request_id"], name="one_record_per_request"
            )
        ]


class RunSecond(models.Model):
    """One second of the live view (LiveAggregate.point()), so late viewers get the whole history and
    the aggregator only rewrites the seconds that changed."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="seconds")
    t = models.IntegerField()
    point = models.JSONField(default=dict)

    class Meta:
        ordering = ["t"]
        constraints = [models.UniqueConstraint(fields=["run", "t"], name="one_point_per_second")]
