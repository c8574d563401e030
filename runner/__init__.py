"""llmperf's load engine: a Django-free asyncio library.

Protocols, packet analysis, metrics, load profiles, the simulator and a CLI. Celery tasks, the
CLI and the tests all call the same code; only plain dataclasses and dicts cross its boundary.
"""

from runner.blocking import run_blocking
from runner.engine import RunResult, run
from runner.metrics import CONVENTIONS, METRICS
from runner.probe import single_request
from runner.records import FAILURE_CLASSES, Outcome, Packet, PacketKind, RequestRecord
from runner.spec import PROTOCOLS, EndpointSpec, GenericFormat, ProfileSpec, Prompt, RunSpec, Slo, Timeouts
from runner.stats import LiveAggregate, ShardStats
from runner.summary import summarize

__all__ = [
    "CONVENTIONS",
    "FAILURE_CLASSES",
    "METRICS",
    "PROTOCOLS",
    "EndpointSpec",
    "GenericFormat",
    "LiveAggregate",
    "Outcome",
    "Packet",
    "PacketKind",
    "ProfileSpec",
    "Prompt",
    "RequestRecord",
    "RunResult",
    "RunSpec",
    "ShardStats",
    "Slo",
    "Timeouts",
    "run",
    "run_blocking",
    "single_request",
    "summarize",
]
