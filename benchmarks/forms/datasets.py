"""Dataset forms: upload/edit (validated by runner.datasets.parse, row by row), the synthetic
generator, team bucket edges, and the bucket fields PlanForm borrows."""

from __future__ import annotations

import random
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import MaxValueValidator

from benchmarks.forms.fields import JSONObjectField, NumberListField
from benchmarks.models import Team
from benchmarks.selectors.datasets import (
    bucket_label_choices,
    default_tokenizer,
    team_edges,
    tokenizer_choices,
)
from benchmarks.services.datasets import MiB, dataset_parse, upload_limits
from runner import DATASET_FORMATS, RowError, parse_label, sample_lengths, select_prompts

FORMAT_CHOICES = [
    ("", "detect from the file name or content"),
    ("jsonl", "JSONL: one {prompt | messages} object per line"),
    ("json", "JSON array of {prompt | messages} objects"),
    ("sharegpt", "ShareGPT: {conversations: [{from, value}, …]}"),
    ("csv", "CSV with a prompt column"),
    ("tsv", "TSV with a prompt column"),
    ("text", "plain text, one prompt per line"),
]
assert {c for c, _ in FORMAT_CHOICES if c} == set(DATASET_FORMATS)
SYNTHETIC_MAX_TOKENS = 50_000_000  # all prompts together; bounds the generating task


class DatasetForm(forms.Form):
    """Create (items required) or edit (items optional: blank keeps them) a dataset."""

    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    tokenizer = forms.ChoiceField(
        required=False,
        label="Count tokens with",
        help_text="Counted in the background after saving; the estimate is labelled as such everywhere.",
    )
    file = forms.FileField(required=False, help_text="JSONL, JSON, ShareGPT, CSV/TSV or plain text, UTF-8.")
    content = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 6}), label="…or paste prompts"
    )
    format = forms.ChoiceField(choices=FORMAT_CHOICES, required=False)
    multi_turn = forms.BooleanField(
        required=False,
        label="Multi-turn",
        help_text="ShareGPT: send each conversation up to its last human turn, not just the first question.",
    )

    def __init__(
        self, *args: Any, team: Team, require_items: bool = True, tokenizer: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.require_items = require_items
        choices = tokenizer_choices(team)
        if tokenizer and tokenizer not in dict(choices):
            choices.append((tokenizer, tokenizer))  # the dataset's own, even if no endpoint uses it now
        self.fields["tokenizer"].choices = choices
        self.fallback_tokenizer = tokenizer or default_tokenizer(team)  # when the field is left out
        self.row_errors: list[RowError] = []
        max_bytes, max_items = upload_limits()
        self.fields["file"].help_text += f" At most {max_bytes // MiB} MiB and {max_items:,} prompts."

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["tokenizer"] = data.get("tokenizer") or self.fallback_tokenizer
        source = self._source(data)
        if source is None:
            if self.require_items:
                raise forms.ValidationError("Upload a file or paste prompts.")
            data["parsed"] = None
            return data
        raw, filename, field = source
        result = dataset_parse(
            data=raw,
            filename=filename,
            fmt=data.get("format") or None,
            multi_turn=bool(data.get("multi_turn")),
        )
        if not result.ok:
            self.row_errors = result.errors
            self.add_error(field, _summary(result.errors))
            return data
        data["parsed"], data["filename"], data["detected_format"] = result, filename, result.format
        return data

    def _source(self, data: dict[str, Any]) -> tuple[bytes, str, str] | None:
        upload: UploadedFile | None = data.get("file")
        if upload is not None:
            max_bytes, _ = upload_limits()
            if upload.size is not None and upload.size > max_bytes:
                raise forms.ValidationError(
                    f"The file is {upload.size / MiB:.1f} MiB; the limit is {max_bytes // MiB} MiB. "
                    "Split it, or raise DATASET_MAX_MB. Nothing was saved."
                )
            return upload.read(), upload.name or "upload", "file"
        pasted = data.get("content") or ""
        if pasted.strip():
            return pasted.encode("utf-8"), "pasted", "content"
        return None


def _summary(errors: list[RowError]) -> str:
    rows = [e for e in errors if e.line]
    whole = [e.reason for e in errors if not e.line]
    if whole and not rows:
        return f"{whole[0][:1].upper()}{whole[0][1:]}. Nothing was saved."
    first = rows[0]
    more = f" and {len(rows) - 1} more row{'s' if len(rows) > 2 else ''}" if len(rows) > 1 else ""
    return f"Line {first.line}: {first.reason}{more}. Nothing was saved; fix the file and upload it again."


class SyntheticForm(forms.Form):
    DISTRIBUTIONS = [
        ("fixed", "Fixed length"),
        ("uniform", "Uniform between min and max"),
        ("normal", "Normal (mean, std), kept within min and max"),
        ("buckets", "Counts per bucket"),
    ]
    OUTPUTS = [("none", "Plan's max_tokens"), ("fixed", "Fixed"), ("uniform", "Uniform between min and max")]

    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    tokenizer = forms.ChoiceField(
        required=False, label="Lengths in tokens of", help_text="Prompts are exact in this tokenizer."
    )
    n = forms.IntegerField(min_value=1, initial=100, label="Prompts (N)")
    distribution = forms.ChoiceField(choices=DISTRIBUTIONS, initial="fixed")
    tokens = forms.IntegerField(min_value=1, required=False, initial=1024, label="Fixed length")
    length_min = forms.IntegerField(min_value=1, required=False, label="Min length")
    length_max = forms.IntegerField(min_value=1, required=False, label="Max length")
    mean = forms.FloatField(min_value=1, required=False)
    std = forms.FloatField(min_value=0, required=False)
    bucket_counts = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One bucket per line, e.g. “1k-4k: 20” and “16k-32k: 5”; they must add up to N.",
    )
    seed = forms.IntegerField(initial=0)
    shared_prefix_tokens = forms.IntegerField(
        min_value=0, initial=0, label="Shared prefix (tokens)", help_text="0 = none; measures prefix caching."
    )
    prefix_groups = forms.IntegerField(
        min_value=1, initial=1, help_text="Prompt i starts with prefix i mod groups."
    )
    output = forms.ChoiceField(choices=OUTPUTS, initial="none", label="Output lengths")
    output_tokens = forms.IntegerField(min_value=1, required=False, label="Fixed output")
    output_min = forms.IntegerField(min_value=1, required=False)
    output_max = forms.IntegerField(min_value=1, required=False)

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tokenizer"].choices = tokenizer_choices(team)
        self.team = team
        self.fields["n"].validators.append(MaxValueValidator(upload_limits()[1]))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["tokenizer"] = data.get("tokenizer") or default_tokenizer(self.team)
        if self.errors:
            return data
        try:
            data["params"] = self._params(data)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)[:1].upper() + str(exc)[1:] + ".") from None
        return data

    def _params(self, data: dict[str, Any]) -> dict[str, Any]:
        n, dist = data["n"], self._distribution(data)
        lengths = sample_lengths(dist, n, random.Random(data["seed"]))  # raises on bad parameters
        if sum(lengths) > SYNTHETIC_MAX_TOKENS:
            raise ValueError(f"about {sum(lengths):,} tokens in all; the limit is {SYNTHETIC_MAX_TOKENS:,}")
        prefix = data["shared_prefix_tokens"] or 0
        if prefix and min(lengths) <= prefix:
            raise ValueError(
                f"the shortest prompt ({min(lengths)} tokens) must be longer than the shared prefix"
            )
        output = self._output(data)
        if isinstance(output, dict):
            sample_lengths(output, n, random.Random(0))
        return {
            "n": n,
            "distribution": dist,
            "seed": data["seed"],
            "shared_prefix_tokens": prefix,
            "prefix_groups": data["prefix_groups"] or 1,
            "output_tokens": output,
        }

    @staticmethod
    def _distribution(data: dict[str, Any]) -> dict[str, Any]:
        kind = data["distribution"]
        if kind == "fixed":
            return {"kind": "fixed", "tokens": _need(data, "tokens", "a fixed length")}
        lo, hi = data.get("length_min"), data.get("length_max")
        if kind == "uniform":
            return {
                "kind": "uniform",
                "min": _need(data, "length_min", "min"),
                "max": _need(data, "length_max", "max"),
            }
        if kind == "normal":
            dist: dict[str, Any] = {
                "kind": "normal",
                "mean": _need(data, "mean", "a mean"),
                "std": data.get("std") or 0.0,
            }
            dist.update({k: v for k, v in (("min", lo), ("max", hi)) if v is not None})
            return dist
        return {"kind": "buckets", "counts": _bucket_counts(data.get("bucket_counts") or "")}

    @staticmethod
    def _output(data: dict[str, Any]) -> int | dict[str, Any] | None:
        if data["output"] == "fixed":
            return int(_need(data, "output_tokens", "a fixed output length"))
        if data["output"] == "uniform":
            return {
                "kind": "uniform",
                "min": _need(data, "output_min", "an output min"),
                "max": _need(data, "output_max", "an output max"),
            }
        return None


def _need(data: dict[str, Any], name: str, what: str) -> Any:
    if data.get(name) is None:
        raise ValueError(f"give {what} for this distribution")
    return data[name]


def _bucket_counts(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in filter(None, (part.strip() for part in text.replace(",", "\n").splitlines())):
        label, _, number = line.rpartition(":")
        if not label or not number.strip().isdigit():
            raise ValueError(f"write each bucket as “1k-4k: 20”, not “{line}”")
        parse_label(label.strip())
        counts[label.strip()] = int(number)
    if not counts:
        raise ValueError("give at least one bucket with a count")
    return counts


class EdgesForm(forms.Form):
    edges = NumberListField(
        integers=True, label="Bucket edges", help_text="Input tokens, from 0 up, e.g. 0, 1024, 4096, 16384."
    )

    def clean_edges(self) -> list[int]:
        edges: list[int] = self.cleaned_data["edges"]
        if not edges or edges[0] != 0 or edges != sorted(set(edges)):
            raise forms.ValidationError("Edges must start at 0 and increase.")
        return edges


# --- the plan form's bucket fields (PlanForm calls these) ----------------------------------------


def plan_buckets_setup(form: forms.ModelForm, team: Team) -> None:
    current = list(form.instance.buckets or []) if form.instance.pk else []
    form.fields["buckets"] = forms.MultipleChoiceField(
        choices=bucket_label_choices(team, current),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Send only prompts whose input tokens fall in these buckets (none ticked = all).",
    )
    form.fields["bucket_weights"] = JSONObjectField(
        help_text='Only with “weighted by bucket”: relative weights, e.g. {"1k–4k": 3, "16k–32k": 1}.'
    )
    if not form.instance.pk:
        form.fields["bucket_edges"].initial = ", ".join(str(e) for e in team_edges(team))


def plan_buckets_clean(form: forms.ModelForm, data: dict[str, Any]) -> None:
    if "bucket_edges" in form.errors or "bucket_weights" in form.errors:
        return
    weights = data.get("bucket_weights") or {}
    if any(isinstance(w, bool) or not isinstance(w, int | float) for w in weights.values()):
        form.add_error("bucket_weights", "Weights must be numbers.")
        return
    edges = data.get("bucket_edges") or [0]
    try:
        select_prompts([], data.get("buckets") or None, "weighted", weights or None, edges=edges)
    except ValueError as exc:
        form.add_error("bucket_weights", str(exc))
