"""llmperf's load engine: a Django-free asyncio library.

Protocols, packet analysis, metrics, load profiles, datasets, tokenizers, comparisons, the simulator
and a CLI. Celery tasks, the CLI and the tests all call the same code; only plain dataclasses and dicts
cross its boundary.

This module is the public API: everything the dashboard (``benchmarks/``) uses, and the engine's entry
points and record vocabulary. ``__all__`` lists exactly the public names (``tests/runner/test_api.py``
keeps it honest); submodules are internals that may move. The comparison's names load on first use,
so ``import runner`` does not pay for SciPy.
"""

import importlib as _importlib
import typing as _typing

from runner.accuracy import wilson
from runner.blocking import run_blocking, serve_sink
from runner.capacity import attach_server_view
from runner.capacity import sentence as capacity_sentence
from runner.columns import Columns, columns_from, pack_series, summarize_columns
from runner.datasets import (
    DEFAULT_EDGES,
    DatasetItem,
    ParseResult,
    RowError,
    bucket_index,
    bucket_labels,
    parse_dataset,
    parse_label,
    sample_lengths,
    synthesize,
)
from runner.datasets import Bounds as DatasetBounds
from runner.datasets import histogram as bucket_histogram
from runner.datasets import select as select_prompts
from runner.datasets.parse import FORMATS as DATASET_FORMATS
from runner.datasets.shipped import BUILTINS as BUILTIN_DATASETS
from runner.datasets.shipped import META_KEYS as PROMPT_META_KEYS
from runner.datasets.shipped import apply_template, load_builtin
from runner.engine import RunResult, run
from runner.limits import SETTINGS as LIMIT_SETTINGS
from runner.limits import (
    LimitExceeded,
    Limits,
    Problem,
    capacity_problems,
    endpoint_problems,
    plan_problems,
    profile_problems,
    run_problems,
)
from runner.metrics import CONVENTIONS, CSV_KEYS, DISTRIBUTION_KEYS, METRICS, PAIRED_KEYS, Metric
from runner.mirror import PRIVACY as CAPTURE_PRIVACY
from runner.mirror import MirrorConfig, mirror_records, serve_mirror
from runner.pairing import compare_pairs
from runner.policy import TargetDenied, TargetPolicy
from runner.probe import single_request
from runner.profiles import preview as profile_preview
from runner.profiles import split_run
from runner.protocols.generic import GENERIC_KEYS, classify_sample, generic_format
from runner.records import FAILURE_CLASSES, Outcome, Packet, PacketKind, RequestRecord
from runner.repeat import combine as repeat_combine
from runner.repeat import lines as repeat_lines
from runner.repeat import mean_summary as repeat_mean_summary
from runner.repeat import regressions as repeat_regressions
from runner.replay import LAG_WARN_MS as REPLAY_LAG_WARN_MS
from runner.replay import REPLAY_FORMATS, ReplayError, parse_replay
from runner.server_metrics import ScraperThread
from runner.simulator import SimulatorProcess
from runner.spec import (
    PROTOCOLS,
    EndpointSpec,
    GenericFormat,
    ProfileSpec,
    Prompt,
    RunSpec,
    Slo,
    Timeouts,
    is_secret_header,
)
from runner.spec import scrub as scrub_secrets
from runner.sse import DEFAULT_MAX_EVENT_BYTES
from runner.stats import LiveAggregate, ShardStats
from runner.studies import CAPACITY_KEYS, capacity_blocking, kv_reuse_blocking
from runner.summary import SCHEMA_VERSION, refresh_accuracy, summarize
from runner.tokenizers import TokenizerError, available_tokenizers, load_tokenizer

if _typing.TYPE_CHECKING:
    from runner.compare import PATHS as COMPARE_PATHS
    from runner.compare import (
        Rule,
        accuracy_delta,
        check_rules,
        compare_summaries,
        format_table,
        paired_stats,
        parse_rule,
        regressions,
    )

# name → (module, attribute): imported on first access (runner.compare pulls in SciPy, about a second)
_LAZY = {
    "COMPARE_PATHS": ("runner.compare", "PATHS"),
    "Rule": ("runner.compare", "Rule"),
    "accuracy_delta": ("runner.compare", "accuracy_delta"),
    "check_rules": ("runner.compare", "check_rules"),
    "compare_summaries": ("runner.compare", "compare_summaries"),
    "format_table": ("runner.compare", "format_table"),
    "paired_stats": ("runner.compare", "paired_stats"),
    "parse_rule": ("runner.compare", "parse_rule"),
    "regressions": ("runner.compare", "regressions"),
}


def __getattr__(name: str) -> _typing.Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'runner' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(_importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "BUILTIN_DATASETS",
    "CAPACITY_KEYS",
    "CAPTURE_PRIVACY",
    "COMPARE_PATHS",
    "CONVENTIONS",
    "CSV_KEYS",
    "DATASET_FORMATS",
    "DEFAULT_EDGES",
    "DEFAULT_MAX_EVENT_BYTES",
    "DISTRIBUTION_KEYS",
    "FAILURE_CLASSES",
    "GENERIC_KEYS",
    "LIMIT_SETTINGS",
    "METRICS",
    "PAIRED_KEYS",
    "PROMPT_META_KEYS",
    "PROTOCOLS",
    "REPLAY_FORMATS",
    "REPLAY_LAG_WARN_MS",
    "SCHEMA_VERSION",
    "Columns",
    "DatasetBounds",
    "DatasetItem",
    "EndpointSpec",
    "GenericFormat",
    "LimitExceeded",
    "Limits",
    "LiveAggregate",
    "Metric",
    "MirrorConfig",
    "Outcome",
    "Packet",
    "PacketKind",
    "ParseResult",
    "Problem",
    "ProfileSpec",
    "Prompt",
    "ReplayError",
    "RequestRecord",
    "RowError",
    "Rule",
    "RunResult",
    "RunSpec",
    "ScraperThread",
    "ShardStats",
    "SimulatorProcess",
    "Slo",
    "TargetDenied",
    "TargetPolicy",
    "Timeouts",
    "TokenizerError",
    "accuracy_delta",
    "apply_template",
    "attach_server_view",
    "available_tokenizers",
    "bucket_histogram",
    "bucket_index",
    "bucket_labels",
    "capacity_blocking",
    "capacity_problems",
    "capacity_sentence",
    "check_rules",
    "classify_sample",
    "columns_from",
    "compare_pairs",
    "compare_summaries",
    "endpoint_problems",
    "format_table",
    "generic_format",
    "is_secret_header",
    "kv_reuse_blocking",
    "load_builtin",
    "load_tokenizer",
    "mirror_records",
    "pack_series",
    "paired_stats",
    "parse_dataset",
    "parse_label",
    "parse_replay",
    "parse_rule",
    "plan_problems",
    "profile_preview",
    "profile_problems",
    "refresh_accuracy",
    "regressions",
    "repeat_combine",
    "repeat_lines",
    "repeat_mean_summary",
    "repeat_regressions",
    "run",
    "run_blocking",
    "run_problems",
    "sample_lengths",
    "scrub_secrets",
    "select_prompts",
    "serve_mirror",
    "serve_sink",
    "single_request",
    "split_run",
    "summarize",
    "summarize_columns",
    "synthesize",
    "wilson",
]
