from __future__ import annotations

from django.db import models

from benchmarks.models.endpoints import Endpoint
from benchmarks.models.plans import Plan


class PlanAB(models.Model):
    """Paired A/B: the plan's own endpoint is variant 0 (A); each target adds one more variant, all sent
    the identical arrival schedule and prompts, either at the same moment or alternating."""

    class Mode(models.TextChoices):
        SIMULTANEOUS = "simultaneous", "Simultaneous: every request goes to every variant at once"
        INTERLEAVED = "interleaved", "Interleaved: the variants take turns on the same schedule"

    plan = models.OneToOneField(Plan, on_delete=models.CASCADE, related_name="ab")
    mode = models.CharField(max_length=12, choices=Mode.choices, default=Mode.SIMULTANEOUS)

    def endpoints(self) -> list[Endpoint]:
        """Variants 1…n, in order (variant 0 is the plan's endpoint)."""
        return [t.endpoint for t in self.targets.select_related("endpoint").order_by("position")]


class PlanABTarget(models.Model):
    ab = models.ForeignKey(PlanAB, on_delete=models.CASCADE, related_name="targets")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.PROTECT, related_name="ab_targets")
    position = models.PositiveSmallIntegerField()  # variant index − 1

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["ab", "position"], name="one_ab_target_per_position")]
