from __future__ import annotations

from django.conf import settings
from django.db import models

from benchmarks.models.runs import Run
from benchmarks.models.teams import TeamOwned
from runner import PAIRED_KEYS


class Comparison(TeamOwned):
    """A saved side-by-side of 2–8 runs; the first run is the baseline. ``run_ids`` keeps the order."""

    title = models.CharField(max_length=200)
    notes = models.TextField(blank=True)
    run_ids = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title


class RunSample(models.Model):
    """What comparisons need from a run's raw records, taken once at run end so they never rescan them.

    Per-request values of a uniform random sample of at most ``SIZE`` successful requests (float64
    bytes, one array per metric, aligned), which variant each sampled request hit (uint8 bytes), and for
    an A/B run its per-variant summaries and paired statistics over every request.
    """

    SIZE = 20_000
    METRICS = PAIRED_KEYS  # one column each below (tests/benchmarks/test_compare.py checks they match)

    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="sample")
    population = models.PositiveIntegerField(default=0)  # successful requests the sample was drawn from
    ttft_ms = models.BinaryField(default=b"")
    tokens_per_s = models.BinaryField(default=b"")
    e2e_ms = models.BinaryField(default=b"")
    variant = models.BinaryField(default=b"")
    variants = models.JSONField(default=list)  # per-variant summaries, index = variant
    paired = models.JSONField(default=list)  # paired_stats of variant i vs 0, per metric
    # Every graded request's verdict in schedule order, [prompt id, correct, variant], so accuracy can be
    # compared item by item (McNemar) without rescanning records.
    verdicts = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
