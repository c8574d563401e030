"""The things a run is made of: endpoints, load profiles and plans. Every rule a user can break gets a
message next to the field."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from django import forms

from benchmarks import bridge
from benchmarks.forms.datasets import plan_buckets_clean, plan_buckets_setup
from benchmarks.forms.fields import JSONObjectField, NumberListField
from benchmarks.forms.layout import Fieldsets
from benchmarks.forms.stream_format import FIELD_NAMES, add_stream_fields, clean_stream_format
from benchmarks.models import Dataset, Endpoint, LoadProfile, Plan, Team
from benchmarks.models.endpoints import KEEP_SECRET
from benchmarks.models.plans import VARIANT_FIELDS
from benchmarks.selectors.objects import in_team
from runner import (
    EndpointSpec,
    Problem,
    Timeouts,
    capacity_problems,
    endpoint_problems,
    plan_problems,
    profile_problems,
)


class EndpointForm(Fieldsets, forms.ModelForm):
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown again. Leave blank to keep the saved key.",
    )
    clear_api_key = forms.BooleanField(required=False, label="Remove the saved key")
    headers = JSONObjectField(
        string_values=True,
        help_text='Extra HTTP headers as JSON, e.g. {"X-Org": "perf"}. Headers that carry credentials '
        "(X-Api-Key, Cookie, anything naming a key, token or secret) are stored encrypted and shown as "
        "••••; leave •••• to keep a stored value.",
    )
    base_url = forms.CharField(
        max_length=500, help_text="e.g. http://10.0.0.5:8000/v1 or http://vllm:8000/v1"
    )
    metrics_urls = forms.CharField(
        required=False,
        label="Server metrics URLs",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Prometheus /metrics scraped every 250 ms during runs, one URL per line (e.g. the "
        "prefill and the decode workers; summed). A failed scrape is shown, never fails the run.",
    )

    class Meta:
        model = Endpoint
        fields = [
            "name",
            "protocol",
            "base_url",
            "model",
            "headers",
            "timeout_connect_s",
            "timeout_first_byte_s",
            "timeout_idle_s",
            "timeout_total_s",
            "max_input_tokens",
            "max_output_tokens",
            "tokenizer",
            "max_event_bytes",
            "price_in_per_1k",
            "price_out_per_1k",
            "currency",
            "metrics_urls",
        ]
        labels = {
            "name": "Endpoint name",
            "protocol": "Protocol",
            "base_url": "Base URL",
            "model": "Model name",
            "timeout_connect_s": "Connect timeout (s)",
            "timeout_first_byte_s": "First-token timeout (s)",
            "timeout_idle_s": "Idle timeout between tokens (s)",
            "timeout_total_s": "Total timeout per request (s)",
            "max_input_tokens": "Context: max input tokens",
            "max_output_tokens": "Max output tokens",
            "tokenizer": "Tokenizer",
            "max_event_bytes": "Largest stream event (bytes)",
            "price_in_per_1k": "Price per 1k input tokens",
            "price_out_per_1k": "Price per 1k output tokens",
            "currency": "Currency",
        }
        help_texts = {
            "name": "How the endpoint is listed, e.g. “vllm-a100 qwen3-32b”.",
            "protocol": "The API it speaks. generic-sse / generic-ws: describe its stream format below.",
            "model": "Sent as the request's model; blank for servers that serve one model.",
            "timeout_connect_s": "Opening a connection may take this long.",
            "timeout_first_byte_s": "Until the first token (prefill included); long prompts need more.",
            "timeout_idle_s": "Longest silence between tokens; heartbeats do not count as tokens.",
            "timeout_total_s": "A whole request may take this long.",
            "max_input_tokens": "Prompts longer than this are flagged on the dataset page.",
            "max_output_tokens": "A plan's max_tokens may not exceed this.",
            "tokenizer": "Counts tokens as the server does: qwen3 (shipped), a tokenizer.json path or folder; "
            "blank = a labelled characters/4 estimate.",
            "max_event_bytes": "One SSE event or WebSocket message larger than this ends the request as a "
            "protocol error (1 MiB = 1048576).",
            "price_in_per_1k": "For the cost of runs and plans; 0 = free.",
            "price_out_per_1k": "Output tokens include thinking tokens, as servers bill them.",
            "currency": "Three letters, e.g. USD or EUR.",
        }

    FIELDSETS = (
        ("Target", "Where requests go and how they are authorised.",
         ("name", "protocol", "base_url", "model", "api_key", "clear_api_key", "headers")),
        ("Stream format", "Only for generic-sse / generic-ws: how to read a provider's own stream. Paste a "
                          "sample below to see each line classified before saving.", FIELD_NAMES),
        ("Limits and timeouts", "", ("timeout_connect_s", "timeout_first_byte_s", "timeout_idle_s",
                                     "timeout_total_s", "max_input_tokens", "max_output_tokens", "max_event_bytes")),
        ("Tokens and prices", "", ("tokenizer", "price_in_per_1k", "price_out_per_1k", "currency")),
        ("Server metrics", "", ("metrics_urls",)),
    )  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_stream_fields(self, self.instance.generic if self.instance.pk else None)
        self.fields["clear_api_key"].help_text = "Tick to delete the stored key on save."
        if self.instance.pk:
            self.initial["metrics_urls"] = "\n".join(self.instance.metrics_urls or [])
        if self.instance.pk and self.instance.secret_header_names:
            # auth-bearing headers are stored encrypted and never shown: "••••" keeps a stored value
            shown = {
                **(self.instance.headers or {}),
                **dict.fromkeys(self.instance.secret_header_names, KEEP_SECRET),
            }
            self.initial["headers"] = shown

    def clean_metrics_urls(self) -> list[str]:
        field = forms.URLField(assume_scheme="http")
        urls = [line.strip() for line in (self.cleaned_data.get("metrics_urls") or "").splitlines()]
        try:
            return [field.clean(u) for u in urls if u]
        except forms.ValidationError:
            raise forms.ValidationError(
                "One http(s) URL per line, e.g. http://10.0.0.5:8000/metrics."
            ) from None

    def clean_tokenizer(self) -> str:
        from runner import TokenizerError, load_tokenizer

        ref = self.cleaned_data["tokenizer"].strip()
        try:
            load_tokenizer(ref)
        except TokenizerError as exc:
            raise forms.ValidationError(str(exc)) from None
        return ref

    def clean_base_url(self) -> str:
        """http(s) with a host: internal single-label names (``http://vllm:8000/v1``) included."""
        url = self.cleaned_data["base_url"].strip()
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if (
            parts.scheme not in ("http", "https", "ws", "wss")
            or not parts.hostname
            or port == -1
            or " " in url
        ):
            raise forms.ValidationError("Enter a valid URL, e.g. http://10.0.0.5:8000/v1.")
        return url

    def clean_currency(self) -> str:
        currency = self.cleaned_data["currency"].strip().upper()
        if len(currency) != 3 or not currency.isalpha():
            raise forms.ValidationError("Use a three-letter currency code such as USD or EUR.")
        return currency

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in ("timeout_connect_s", "timeout_first_byte_s", "timeout_idle_s", "timeout_total_s"):
            if data.get(name) is not None and data[name] <= 0:
                self.add_error(name, "Timeouts must be more than 0 seconds.")
        timeouts = Timeouts(
            **{
                key: data[f"timeout_{key}_s"]
                for key in ("connect", "first_byte", "idle", "total")
                if data.get(f"timeout_{key}_s") is not None
            }
        )
        spec = EndpointSpec(protocol="openai-chat", base_url="", timeouts=timeouts)
        add_limit_errors(self, endpoint_problems(spec, bridge.limits()))
        for name in ("price_in_per_1k", "price_out_per_1k"):
            if data.get(name) is not None and data[name] < 0:
                self.add_error(name, "Prices cannot be negative.")
        for name in ("max_input_tokens", "max_output_tokens"):
            if data.get(name) == 0:
                self.add_error(name, "Must be at least 1 token.")
        for name in data.get("headers") or {}:
            if name.lower() == "authorization":
                self.add_error("headers", "Put the key in the API key field, where it is encrypted.")
        clean_stream_format(self, data)
        if "generic" in data:
            self.instance.generic = data["generic"]
        return data


# Profile fields in words, with units, and what each does: (label, help text).
PROFILE_TEXT: dict[str, tuple[str, str]] = {
    "name": ("Profile name", "How the profile is listed, e.g. “ramp to 32 users”."),
    "kind": ("Kind", "Users (closed loop: each sends, waits for the answer, sends again), stages, a request rate "
                     "(open loop), a sweep of levels, a replay of recorded arrivals, or a capacity search."),
    "users": ("Users", "Concurrent users, each with one request in flight."),
    "spawn_rate": ("Spawn rate (users/s)", "How fast users are added until all have started."),
    "hold_s": ("Hold (s)", "How long all users keep going before the ramp down; 0 = until the plan's end."),
    "ramp_down_s": ("Ramp down (s)", "Users stop one by one over this long; 0 = all at once."),
    "stages": ("Stages (JSON)", 'Each stage ramps to its target over its duration, e.g. '
                                '[{"duration_s": 30, "target": 4}, {"duration_s": 30, "target": 8}].'),
    "stage_mode": ("Stage targets are", "Users (closed loop) or a request rate (open loop)."),
    "rate": ("Request rate", "Requests sent whether or not earlier ones answered (open loop)."),
    "rate_unit": ("Rate unit", "Per second or per minute."),
    "arrival": ("Arrivals", "Poisson: random gaps with the rate's mean (realistic traffic); constant: even gaps."),
    "sweep_levels": ("Sweep levels", "Users or requests/s per level, comma-separated, e.g. 1, 2, 4, 8."),
    "sweep_mode": ("Sweep changes", "Users or rate change per level; a thinking budget keeps the users and "
                                    "changes the budget."),
    "budget_param": ("Budget parameter", "The request field each level sets: max_tokens or reasoning_effort."),
    "budget_levels": ("Budget levels", "Comma-separated, e.g. 512, 2048, 8192 for max_tokens or low, medium, high."),
    "level_duration_s": ("Time per level (s)", "How long each sweep level lasts."),
    "replay": ("Replay schedule (JSON)", "Empty: a timed dataset's recorded arrivals. Or a JSON list, "
                                         'e.g. [{"t_s": 0, "prompt": 0}, {"t_s": 0.5, "prompt": 1}].'),
    "speed": ("Replay speed (×)", "2 = twice as fast as recorded, 10 = ten times."),
    "max_concurrency": ("Max in flight (requests)", "Open loop: at most this many requests at once; 0 = unbounded."),
    "seed": ("Seed", "The same seed gives the same arrival times and prompt order."),
    "turns": ("Turns per conversation", "Each user holds a conversation of this many of a dataset item's "
                                        "user turns, the model's own answers as history (1 = single requests)."),
    "think_s": ("Think time between turns (s)", "How long a user waits after an answer before the next turn."),
    "mode": ("Search", "A request rate (open loop) or a number of users (closed loop)."),
    "load_min": ("Lowest level", "Requests/s or users the search starts at; it doubles from here."),
    "load_max": ("Highest level", "The search never goes above this."),
    "attainment": ("SLO attainment", "Share of requests that must meet every objective of the plan, e.g. 0.99."),
    "level_min_requests": ("Requests per level", "At least this many in each level's steady window."),
    "min_level_s": ("Steady window (s)", "How long each level is measured after its warm-up."),
    "warmup_s": ("Warm-up trimmed (s)", "The start of each level, left out of its verdict."),
    "tolerance": ("Bisect to", "Relative width of the final bracket, e.g. 0.05 = within 5 %."),
    "per_bucket": ("One search per input bucket", "A separate capacity for each input-token bucket."),
}  # fmt: skip


class ProfileForm(Fieldsets, forms.ModelForm):
    users = forms.IntegerField(min_value=1, initial=1, required=False)
    spawn_rate = forms.FloatField(min_value=0.001, initial=1.0, required=False, help_text="users per second")
    hold_s = forms.FloatField(min_value=0, initial=0, required=False, help_text="0 = hold to the end")
    ramp_down_s = forms.FloatField(min_value=0, initial=0, required=False)
    stages = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='JSON list, e.g. [{"duration_s": 30, "target": 4}, {"duration_s": 30, "target": 8}]',
    )
    stage_mode = forms.ChoiceField(
        choices=[("users", "users"), ("rate", "rate")], initial="users", required=False
    )
    rate = forms.FloatField(min_value=0.001, initial=1.0, required=False)
    rate_unit = forms.ChoiceField(
        choices=[("qps", "per second"), ("qpm", "per minute")], initial="qps", required=False
    )
    arrival = forms.ChoiceField(
        choices=[("poisson", "poisson"), ("constant", "constant")], initial="poisson", required=False
    )
    sweep_levels = NumberListField(required=False, help_text="comma-separated levels, e.g. 1, 2, 4, 8")
    sweep_mode = forms.ChoiceField(
        choices=[("users", "users"), ("rate", "rate"), ("budget", "thinking budget (same users)")],
        initial="users",
        required=False,
        help_text="Users or rate change per level; a thinking budget keeps the users and changes the budget.",
    )
    budget_param = forms.ChoiceField(
        choices=[("max_tokens", "max_tokens"), ("reasoning_effort", "reasoning_effort")],
        initial="max_tokens",
        required=False,
        label="Budget parameter",
    )
    budget_levels = forms.CharField(
        required=False,
        label="Budget levels",
        help_text="Comma-separated, e.g. 512, 2048, 8192 for max_tokens or low, medium, high.",
    )
    level_duration_s = forms.FloatField(min_value=1, initial=30, required=False)
    replay = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Empty: send a timed dataset (an uploaded capture, access log or trace) at its recorded "
        'arrivals. Or a JSON list, e.g. [{"t_s": 0, "prompt": 0}, {"t_s": 0.5, "prompt": 1}]',
    )
    speed = forms.FloatField(
        min_value=0.001, initial=1.0, required=False, help_text="replay: 2 = twice as fast, 10 = ten times"
    )
    max_concurrency = forms.IntegerField(
        min_value=0, initial=0, required=False, help_text="open loop: most requests in flight, 0 = unbounded"
    )
    seed = forms.IntegerField(initial=0, required=False)
    turns = forms.IntegerField(
        min_value=1,
        max_value=100,
        initial=1,
        required=False,
        label="Turns per conversation",
        help_text="Users: each user holds a conversation of this many of a dataset item's user turns, "
        "the model's own answers as history (1 = single requests).",
    )
    think_s = forms.FloatField(
        min_value=0,
        initial=0.0,
        required=False,
        label="Think time between turns (s)",
        help_text="How long a user waits after an answer before the next turn.",
    )
    # capacity at SLO (runner.CAPACITY_KEYS); the objectives themselves are the plan's SLO fields
    mode = forms.ChoiceField(
        label="Capacity: search", choices=[("rate", "request rate (open loop)"), ("users", "users (closed loop)")],
        initial="rate", required=False,
    )  # fmt: skip
    load_min = forms.FloatField(min_value=0.001, initial=1.0, required=False, label="Capacity: lowest level",
                                help_text="req/s, or users")  # fmt: skip
    load_max = forms.FloatField(
        min_value=0.001, initial=64.0, required=False, label="Capacity: highest level"
    )
    attainment = forms.FloatField(
        min_value=0.01, max_value=1, initial=0.99, required=False, label="Capacity: SLO attainment",
        help_text="share of requests that must meet every objective of the plan (e.g. 0.99)",
    )  # fmt: skip
    level_min_requests = forms.IntegerField(min_value=1, initial=200, required=False,
                                            label="Capacity: requests per level", help_text="in the steady window, at least")  # fmt: skip
    min_level_s = forms.FloatField(
        min_value=0.5, initial=10.0, required=False, label="Capacity: steady window, s"
    )
    warmup_s = forms.FloatField(
        min_value=0, initial=3.0, required=False, label="Capacity: warm-up trimmed, s"
    )
    tolerance = forms.FloatField(min_value=0.001, initial=0.05, required=False, label="Capacity: bisect to",
                                 help_text="relative width of the final bracket")  # fmt: skip
    per_bucket = forms.BooleanField(required=False, label="Capacity: one search per input-token bucket")

    CAPACITY_FIELDS = (
        "mode", "load_min", "load_max", "attainment", "level_min_requests", "min_level_s", "warmup_s",
        "tolerance", "per_bucket",
    )  # fmt: skip
    SPEC_FIELDS = (
        "users",
        "spawn_rate",
        "hold_s",
        "ramp_down_s",
        "stages",
        "stage_mode",
        "rate",
        "rate_unit",
        "arrival",
        "sweep_levels",
        "sweep_mode",
        "level_duration_s",
        "replay",
        "speed",
        "max_concurrency",
        "seed",
        "turns",
        "think_s",
        "budget_param",
        "budget_levels",
    )

    FIELDSETS = (
        ("Profile", "", ("name", "kind")),
        ("Users", "A closed loop: each user waits for its answer before sending again.",
         ("users", "spawn_rate", "hold_s", "ramp_down_s", "turns", "think_s")),
        ("Stages", "", ("stages", "stage_mode")),
        ("Rate", "An open loop: requests go out on schedule whatever the server does.", ("rate", "rate_unit")),
        ("Sweep", "Throughput against latency: one level after another.",
         ("sweep_levels", "sweep_mode", "level_duration_s", "budget_param", "budget_levels")),
        ("Replay", "", ("replay", "speed")),
        ("Capacity at SLO", "The highest load that holds the plan's SLOs; the objectives are the plan's.",
         CAPACITY_FIELDS),
        ("Arrivals", "", ("arrival", "max_concurrency", "seed")),
    )  # fmt: skip

    class Meta:
        model = LoadProfile
        fields = ["name", "kind"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, (label, help_text) in PROFILE_TEXT.items():
            self.fields[name].label, self.fields[name].help_text = label, help_text
        if self.instance.pk:
            for name in (*self.SPEC_FIELDS, *self.CAPACITY_FIELDS):
                value = self.instance.spec.get(name)
                if value is not None:
                    if name in ("stages", "replay"):
                        value = json.dumps(value)
                    elif name == "budget_levels":
                        value = ", ".join(str(v) for v in value)
                    self.initial[name] = value

    def _capacity_spec(self) -> dict[str, Any]:
        spec = {n: self.cleaned_data.get(n) for n in self.CAPACITY_FIELDS}
        spec = {n: (v if v not in (None, "") else self.fields[n].initial) for n, v in spec.items()}
        spec["per_bucket"] = bool(spec["per_bucket"])
        return spec

    def clean_budget_levels(self) -> list[str]:
        return [
            part.strip() for part in (self.cleaned_data.get("budget_levels") or "").split(",") if part.strip()
        ]

    def _clean_budget(self, data: dict[str, Any]) -> None:
        levels = data.get("budget_levels") or []
        if data.get("budget_param") == "max_tokens" and not all(v.isdigit() and int(v) > 0 for v in levels):
            self.add_error("budget_levels", "max_tokens levels are whole numbers above 0, e.g. 512, 2048.")
        if not data.get("users"):
            self.add_error("users", "A budget sweep keeps this many users at every level.")
        data["sweep_levels"] = []  # the spec fills them with the users, one per budget level

    def clean_stages(self) -> list[dict[str, float]]:
        return self._json_rows("stages", ("duration_s", "target"))

    def clean_replay(self) -> list[dict[str, float]]:
        return self._json_rows("replay", ("t_s", "prompt"))

    def _json_rows(self, name: str, keys: tuple[str, str]) -> list[dict[str, float]]:
        text = (self.cleaned_data.get(name) or "").strip()
        if not text:
            return []
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg}.") from None
        ok = isinstance(rows, list) and all(
            isinstance(r, dict) and all(isinstance(r.get(k), int | float) and r[k] >= 0 for k in keys)
            for r in rows
        )
        if not ok:
            raise forms.ValidationError(f"Each row needs non-negative numbers {keys[0]} and {keys[1]}.")
        return [{k: float(r[k]) for k in keys} for r in rows]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("kind")
        required = {
            "users": ("users", "spawn_rate"),
            "stages": ("stages",),
            "rate": ("rate",),
            "sweep": ("budget_levels",)
            if data.get("sweep_mode") == "budget"
            else ("sweep_levels", "level_duration_s"),
            "replay": (),  # empty: the timed dataset's own arrivals
            "kv_reuse": ("users", "spawn_rate"),
        }.get(kind or "", ())
        for name in required:
            if data.get(name) in (None, "", []):
                self.add_error(name, f"Required for a “{kind}” profile.")
        if kind == "sweep" and any(level <= 0 for level in data.get("sweep_levels") or []):
            self.add_error("sweep_levels", "Levels must be more than 0.")
        if kind == "sweep" and data.get("sweep_mode") == "budget":
            self._clean_budget(data)
        if kind == "capacity":
            self._clean_capacity(data)
        if kind and not self.errors:
            add_limit_errors(self, profile_limit_problems(kind, self._spec(data), self._capacity_spec()))
        return data

    def _clean_capacity(self, data: dict[str, Any]) -> None:
        from runner import CAPACITY_KEYS

        lo = data.get("load_min") or CAPACITY_KEYS["load_min"]
        hi = data.get("load_max") or CAPACITY_KEYS["load_max"]
        if lo > hi:
            self.add_error("load_max", "The highest level must be at least the lowest.")

    def _spec(self, data: dict[str, Any]) -> dict[str, Any]:
        """The spec as saved: each field left blank takes its default."""
        defaults = {n: self.fields[n].initial for n in self.SPEC_FIELDS}
        spec = {n: data.get(n) for n in self.SPEC_FIELDS}
        spec = {n: (v if v not in (None, "") else defaults[n]) for n, v in spec.items()}
        for name in ("stages", "replay", "sweep_levels"):
            spec[name] = spec[name] or []
        return spec

    def save(self, commit: bool = True) -> LoadProfile:
        profile: LoadProfile = super().save(commit=False)
        profile.spec = self._spec(self.cleaned_data)
        profile.spec["kind"] = profile.kind
        if profile.kind == "capacity":
            profile.spec |= self._capacity_spec()
        if commit:
            profile.save()
        return profile


class PlanForm(Fieldsets, forms.ModelForm):
    repeat = forms.IntegerField(
        min_value=1,
        max_value=30,
        initial=1,
        required=False,
        label="Repeat (runs)",
        help_text="Run the plan this many times, one after another: the result gives each headline "
        "metric's mean and 95% interval, and comparisons use the intervals.",
    )
    extra_params = JSONObjectField(
        label="Extra request parameters (JSON)",
        help_text='Added to every request body as they are, e.g. {"top_p": 0.9, "reasoning_effort": "high"}.',
    )
    bucket_edges = NumberListField(
        integers=True,
        initial="0, 1024, 4096, 16384, 32768, 49152",
        label="Input-token bucket edges (tokens)",
        help_text="Every result is also reported per bucket of prompt length; comma-separated, increasing.",
    )

    FIELDSETS = (
        ("Target", "What is sent, and where.", ("name", "endpoint", "dataset", "max_tokens", "temperature",
                                                "extra_params", "prompt_template")),
        ("Load", "How many users or requests, and which prompts they draw.",
         ("profile", "sample_order", "buckets", "bucket_weights")),
        ("Stop conditions", "The run ends at whichever comes first.", ("duration_s", "max_requests", "drain_s")),
        ("SLOs", "What a request must meet to count as good (goodput, attainment, capacity).",
         ("slo_ttft_ms", "slo_tokens_per_s", "slo_e2e_ms", "length_is_failure")),
        ("Analysis", "How results are grouped and what is kept with them.", ("bucket_edges", "notes")),
        ("Variant tags", "What this deployment is, shown as column headers in comparisons and filterable "
                         "on the runs list.", VARIANT_FIELDS),
        ("Scale", "How the load is generated.", ("shard_count", "repeat")),
    )  # fmt: skip

    class Meta:
        model = Plan
        fields = [
            "name",
            "endpoint",
            "dataset",
            "profile",
            "max_tokens",
            "temperature",
            "extra_params",
            "prompt_template",
            "duration_s",
            "max_requests",
            "drain_s",
            "bucket_edges",
            "slo_ttft_ms",
            "slo_tokens_per_s",
            "slo_e2e_ms",
            "length_is_failure",
            "sample_order",
            "buckets",
            "bucket_weights",
            "shard_count",
            "repeat",
            *VARIANT_FIELDS,
            "notes",
        ]
        labels = {
            "name": "Plan name",
            "endpoint": "Endpoint",
            "dataset": "Dataset",
            "profile": "Load profile",
            "max_tokens": "Max output tokens per request",
            "temperature": "Temperature",
            "prompt_template": "Prompt template",
            "duration_s": "Duration (s)",
            "max_requests": "Max requests",
            "drain_s": "Drain time (s)",
            "slo_ttft_ms": "TTFT SLO (ms)",
            "slo_tokens_per_s": "Tokens/s SLO (per request)",
            "slo_e2e_ms": "End-to-end SLO (ms)",
            "length_is_failure": "Count length-capped answers as failures",
            "sample_order": "Prompt order",
            "buckets": "Only these input buckets",
            "bucket_weights": "Bucket weights (JSON)",
            "shard_count": "Shards",
            "quantization": "Quantization",
            "speculative": "Speculative decoding",
            "pd_separation": "Prefill/decode split",
            "tp": "Tensor parallel (TP)",
            "dp": "Data parallel (DP)",
            "pp": "Pipeline parallel (PP)",
            "ep": "Expert parallel (EP)",
            "hardware": "Hardware",
            "engine_name": "Serving engine",
            "engine_version": "Engine version",
            "notes": "Notes",
        }
        help_texts = {
            "name": "How the plan is listed, e.g. “qwen3-32b int4, 32 users, long prompts”.",
            "endpoint": "The server the load goes to; its tokenizer counts tokens and its prices give the cost.",
            "dataset": "The prompts sent; each run pins the version it sent.",
            "profile": "Users or request rate over time; its shape is drawn below.",
            "max_tokens": "Sent as max_tokens; a prompt's own max_tokens wins. Reasoning models spend it on "
            "thinking too.",
            "temperature": "Blank: the server's default. 0 to 2.",
            "prompt_template": "Text with one {prompt} placeholder each prompt is put into; blank = the "
            "dataset's default template.",
            "duration_s": "How long load is generated. Blank: until Max requests.",
            "max_requests": "Stop after this many requests. Blank: until the duration ends.",
            "drain_s": "After the end, requests still in flight get this long to finish; later ones are "
            "timeouts, never hidden.",
            "slo_ttft_ms": "Time to first token a request must meet. Blank: no TTFT objective.",
            "slo_tokens_per_s": "Decode speed a request must reach. Blank: no speed objective.",
            "slo_e2e_ms": "Whole-request time a request must meet. Blank: no end-to-end objective.",
            "length_is_failure": "An answer stopped by max_tokens is a success flagged length-capped unless "
            "this is ticked.",
            "sample_order": "Sequential sends the dataset in order (runs pair by item), shuffled is seeded, "
            "weighted picks a bucket per request by its weight.",
            "shard_count": "Load generators the run is split over; 0 = one per live load worker.",
            "quantization": "e.g. bf16, fp8, int4, awq.",
            "speculative": "e.g. MTP, eagle, a draft model; blank = none.",
            "pd_separation": "e.g. 1P3D; blank = not disaggregated.",
            "tp": "GPUs a layer is split over.",
            "dp": "Replicas serving in parallel.",
            "pp": "Pipeline stages.",
            "ep": "GPUs the experts are spread over (MoE).",
            "hardware": "e.g. 8×H100 80GB.",
            "engine_name": "e.g. vLLM, SGLang, TGI.",
            "engine_version": "e.g. 0.8.5.",
            "notes": "Anything a colleague should know when reading the results.",
        }
        error_messages = {
            "name": {"required": "Give the plan a name, so its runs can be found."},
            "endpoint": {"required": "Pick the endpoint to send load to (add one under Endpoints first)."},
            "dataset": {"required": "Pick the prompts to send (add MATH-500 in one click under Datasets)."},
            "profile": {"required": "Pick a load profile (users or a request rate; add one under Profiles)."},
            "max_tokens": {"required": "Say how many output tokens a request may take, e.g. 256."},
            "drain_s": {"required": "Give the drain time in seconds, e.g. 30 (0 cuts requests at the end)."},
        }

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only this team's objects can be picked: a forged id of another team's endpoint is "not a choice".
        self.fields["endpoint"].queryset = team_queryset("endpoint", team)
        self.fields["dataset"].queryset = team_queryset("dataset", team)
        self.fields["profile"].queryset = team_queryset("profile", team)
        plan_buckets_setup(self, team)
        for name in ("buckets", "bucket_weights"):
            self.fields[name].label = self.Meta.labels[name]

    def clean_repeat(self) -> int:
        return self.cleaned_data.get("repeat") or 1

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("duration_s") and not data.get("max_requests"):
            raise forms.ValidationError("Set a duration, a maximum number of requests, or both.")
        if data.get("duration_s") is not None and data["duration_s"] <= 0:
            self.add_error("duration_s", "Duration must be more than 0 seconds.")
        if data.get("max_tokens") == 0:
            self.add_error("max_tokens", "max_tokens must be at least 1.")
        endpoint = data.get("endpoint")
        if endpoint and data.get("max_tokens") and data["max_tokens"] > endpoint.max_output_tokens:
            self.add_error(
                "max_tokens", f"More than the endpoint's output context ({endpoint.max_output_tokens})."
            )
        temperature = data.get("temperature")
        if temperature is not None and not 0 <= temperature <= 2:
            self.add_error("temperature", "Temperature must be between 0 and 2.")
        edges = data.get("bucket_edges")
        if edges is not None and (not edges or edges != sorted(set(edges)) or edges[0] < 0):
            self.add_error("bucket_edges", "Edges must be increasing, distinct and not negative.")
        plan_buckets_clean(self, data)
        self._clean_template(data)
        self._clean_limits(data)
        return data

    def _clean_limits(self, data: dict[str, Any]) -> None:
        """The run's stops and shards, and the chosen profile as it is now, within the limits."""
        bound = bridge.limits()
        add_limit_errors(
            self,
            plan_problems(
                duration_s=data.get("duration_s"),
                max_requests=data.get("max_requests"),
                shard_count=data.get("shard_count") or 0,
                limits=bound,
            ),
        )
        profile = data.get("profile")
        if profile is not None:
            problems = profile_limit_problems(profile.kind, profile.spec, bridge.capacity_settings(profile))
            for problem in problems:
                self.add_error("profile", f"Profile “{profile.name}”: {problem}. Edit the profile first.")

    def _clean_template(self, data: dict[str, Any]) -> None:
        """A template wraps every prompt: exactly one {prompt} placeholder, or none at all (blank)."""
        template = (data.get("prompt_template") or "").strip("\r\n")
        data["prompt_template"] = template
        if template and template.count("{prompt}") != 1:
            self.add_error(
                "prompt_template",
                "A prompt template needs exactly one {prompt} placeholder (where each prompt goes).",
            )


def profile_limit_problems(kind: str, spec: dict[str, Any], capacity: dict[str, Any] | None) -> list[Problem]:
    """A profile's load shape (and capacity search) past the deployment's limits."""
    bound = bridge.limits()
    problems = profile_problems(bridge.profile_spec({**spec, "kind": kind}), bound)
    if kind == "capacity" and capacity:
        problems += capacity_problems(capacity, bound)
    return problems


def add_limit_errors(form: forms.BaseForm, problems: list[Problem]) -> None:
    """Each problem next to its field (or the form's top when the form has no such field)."""
    for problem in problems:
        field = problem.field if problem.field in form.fields else None
        form.add_error(field, _sentence(problem))


def _sentence(problem: Problem) -> str:
    text = str(problem)
    return text[0].upper() + text[1:] + "."


def team_queryset(kind: str, team: Team) -> Any:
    model = {"endpoint": Endpoint, "dataset": Dataset, "profile": LoadProfile}[kind]
    return in_team(model, team=team)
