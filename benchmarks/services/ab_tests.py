"""A plan's paired A/B targets: the plan's endpoint is variant A, these are B, C, …"""

from __future__ import annotations

from django.db import transaction

from benchmarks.models import Endpoint, Plan, PlanAB, PlanABTarget


@transaction.atomic
def plan_ab_set(*, plan: Plan, endpoints: list[Endpoint], mode: str) -> PlanAB | None:
    """Replace the targets; no endpoints turns A/B off (the plan runs its one endpoint again)."""
    PlanAB.objects.filter(plan=plan).delete()
    if not endpoints:
        return None
    ab = PlanAB.objects.create(plan=plan, mode=mode)
    PlanABTarget.objects.bulk_create(
        [PlanABTarget(ab=ab, endpoint=e, position=i) for i, e in enumerate(endpoints)]
    )
    return ab
