"""Models, one module per entity."""

from benchmarks.models.ab_tests import PlanAB, PlanABTarget
from benchmarks.models.api_tokens import ApiToken
from benchmarks.models.comparison import Comparison, RunSample
from benchmarks.models.datasets import Dataset, DatasetItem, DatasetVersion, TeamBuckets, TokenCount
from benchmarks.models.endpoints import Endpoint
from benchmarks.models.plans import VARIANT_FIELDS, Plan
from benchmarks.models.profiles import LoadProfile
from benchmarks.models.runs import RequestRecord, Run, RunSecond, Shard
from benchmarks.models.schedules import PlanSchedule, RunCheck
from benchmarks.models.teams import Membership, Team, TeamOwned

__all__ = [
    "VARIANT_FIELDS",
    "ApiToken",
    "Comparison",
    "Dataset",
    "DatasetItem",
    "DatasetVersion",
    "Endpoint",
    "LoadProfile",
    "Membership",
    "Plan",
    "PlanAB",
    "PlanABTarget",
    "PlanSchedule",
    "RequestRecord",
    "Run",
    "RunCheck",
    "RunSample",
    "RunSecond",
    "Shard",
    "Team",
    "TeamBuckets",
    "TeamOwned",
    "TokenCount",
]
