"""Models, one module per entity."""

from benchmarks.models.datasets import Dataset
from benchmarks.models.endpoints import Endpoint
from benchmarks.models.plans import VARIANT_FIELDS, Plan
from benchmarks.models.profiles import LoadProfile
from benchmarks.models.runs import RequestRecord, Run, RunSecond, Shard
from benchmarks.models.teams import Membership, Team, TeamOwned

__all__ = [
    "VARIANT_FIELDS",
    "Dataset",
    "Endpoint",
    "LoadProfile",
    "Membership",
    "Plan",
    "RequestRecord",
    "Run",
    "RunSecond",
    "Shard",
    "Team",
    "TeamOwned",
]
