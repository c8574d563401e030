from __future__ import annotations

from django.db import models

from benchmarks.models.datasets import Dataset
from benchmarks.models.endpoints import Endpoint
from benchmarks.models.profiles import LoadProfile
from benchmarks.models.teams import TeamOwned

VARIANT_FIELDS = (
    "quantization",
    "speculative",
    "pd_separation",
    "tp",
    "dp",
    "pp",
    "ep",
    "hardware",
    "engine_name",
    "engine_version",
)


def default_bucket_edges() -> list[int]:
    return [0, 1024, 4096, 16384, 32768, 49152]


class Plan(TeamOwned):
    name = models.CharField(max_length=100)
    endpoint = models.ForeignKey(Endpoint, on_delete=models.PROTECT, related_name="plans")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="plans")
    profile = models.ForeignKey(LoadProfile, on_delete=models.PROTECT, related_name="plans")
    # Request parameters.
    max_tokens = models.PositiveIntegerField(default=256)
    temperature = models.FloatField(null=True, blank=True)
    extra_params = models.JSONField(default=dict, blank=True)
    # Text with one {prompt} placeholder each prompt is wrapped in; blank = the dataset's default.
    prompt_template = models.TextField(
        blank=True, help_text="Text with one {prompt} placeholder; blank = the dataset's default."
    )
    # Stop conditions and analysis.
    duration_s = models.FloatField(null=True, blank=True, default=60.0)
    max_requests = models.PositiveIntegerField(null=True, blank=True)
    drain_s = models.FloatField(default=30.0, help_text="after the end, in-flight requests get this long")
    bucket_edges = models.JSONField(default=default_bucket_edges)
    slo_ttft_ms = models.FloatField(null=True, blank=True, default=2000.0)
    slo_tokens_per_s = models.FloatField(null=True, blank=True, default=20.0)
    slo_e2e_ms = models.FloatField(null=True, blank=True)
    length_is_failure = models.BooleanField(default=False)
    sample_order = models.CharField(
        max_length=10,
        choices=[("sequential", "Sequential"), ("shuffled", "Shuffled"), ("weighted", "Weighted by bucket")],
        default="sequential",
    )
    # Draw only prompts whose input tokens fall in these buckets (labels like "16k–32k"; [] = all),
    # and with "weighted", pick a bucket per request in proportion to bucket_weights[label].
    buckets = models.JSONField(default=list, blank=True)
    bucket_weights = models.JSONField(default=dict, blank=True)
    shard_count = models.PositiveIntegerField(default=0, help_text="0 = one shard per live load worker")
    repeat = models.PositiveSmallIntegerField(
        default=1,
        help_text="run the plan this many times; results give each headline's mean and 95% interval",
    )
    # Variant tags, compared across runs.
    quantization = models.CharField(max_length=50, blank=True)
    speculative = models.CharField(max_length=50, blank=True, help_text="e.g. MTP, eagle, draft model")
    pd_separation = models.CharField(max_length=50, blank=True, help_text="prefill/decode split, e.g. 1P3D")
    tp = models.PositiveSmallIntegerField(null=True, blank=True)
    dp = models.PositiveSmallIntegerField(null=True, blank=True)
    pp = models.PositiveSmallIntegerField(null=True, blank=True)
    ep = models.PositiveSmallIntegerField(null=True, blank=True)
    hardware = models.CharField(max_length=100, blank=True)
    engine_name = models.CharField(max_length=50, blank=True)
    engine_version = models.CharField(max_length=50, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def effective_template(self) -> str:
        """The template prompts are wrapped in: the plan's own, else its dataset's default."""
        return self.prompt_template or self.dataset.prompt_template

    def variant(self) -> dict[str, str]:
        """Set variant tags as strings, for the run's snapshot and filters."""
        tags = {f: getattr(self, f) for f in VARIANT_FIELDS}
        return {k: str(v) for k, v in tags.items() if v not in ("", None)}
