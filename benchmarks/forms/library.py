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


class EndpointForm(forms.ModelForm):
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
    generic = JSONObjectField(help_text="Only for generic-sse / generic-ws: stream format paths (JSON).")
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
            "generic",
            "metrics_urls",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
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
        return data


class ProfileForm(forms.ModelForm):
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

    class Meta:
        model = LoadProfile
        fields = ["name", "kind"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
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


class PlanForm(forms.ModelForm):
    repeat = forms.IntegerField(
        min_value=1,
        max_value=30,
        initial=1,
        required=False,
        help_text="Run the plan this many times, one after another: the result gives each headline "
        "metric's mean and 95% interval, and comparisons use the intervals.",
    )
    extra_params = JSONObjectField(help_text='Passed through to the request, e.g. {"top_p": 0.9}.')
    bucket_edges = NumberListField(
        integers=True,
        initial="0, 1024, 4096, 16384, 32768, 49152",
        help_text="Input-token bucket edges for per-bucket rows.",
    )

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

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only this team's objects can be picked: a forged id of another team's endpoint is "not a choice".
        self.fields["endpoint"].queryset = team_queryset("endpoint", team)
        self.fields["dataset"].queryset = team_queryset("dataset", team)
        self.fields["profile"].queryset = team_queryset("profile", team)
        plan_buckets_setup(self, team)

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
