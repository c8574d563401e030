"""Prompt sets: parse uploads (:mod:`.parse`), synthesise exact-length prompts (:mod:`.synthetic`),
and bucket prompts by input length (:mod:`.buckets`)."""

from runner.datasets.buckets import (
    DEFAULT_EDGES,
    bucket_index,
    bucket_label,
    bucket_labels,
    histogram,
    parse_label,
    select,
)
from runner.datasets.parse import Bounds, DatasetItem, ParseResult, RowError, parse_dataset
from runner.datasets.synthetic import SyntheticItem, sample_lengths, synthesize

__all__ = [
    "DEFAULT_EDGES",
    "Bounds",
    "DatasetItem",
    "ParseResult",
    "RowError",
    "SyntheticItem",
    "bucket_index",
    "bucket_label",
    "bucket_labels",
    "histogram",
    "parse_dataset",
    "parse_label",
    "sample_lengths",
    "select",
    "synthesize",
]
