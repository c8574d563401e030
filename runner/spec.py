"""What a run is asked to do: plain, JSON-serialisable dataclasses.

Celery carries these as dicts (``to_dict`` / ``from_dict``); the CLI builds them from flags;
the Django bridge builds them from models. Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

Protocol = Literal[
    "openai-chat",
    "openai-completions",
    "anthropic",
    "generic-sse",
    "generic-ws",
    "openai-sdk",
]
PROTOCOLS: tuple[str, ...] = typing.get_args(Protocol)


@dataclass(slots=True)
class Timeouts:
    """Seconds. ``idle`` counts from the last *content* packet, so heartbeats never keep a stalled
    stream alive forever, yet a heartbeat-only stream is told apart from a dead connection."""

    connect: float = 10.0
    first_byte: float = 120.0
    idle: float = 60.0
    total: float = 600.0


@dataclass(slots=True)
class GenericFormat:
    """How to read a provider's own stream format without code (generic-sse / generic-ws).

    ``body_template`` is JSON with ``{{prompt}}``, ``{{messages}}``, ``{{model}}``, ``{{max_tokens}}``
    placeholders. Paths are dotted (``choices.0.delta.content``)."""

    body_template: str = (
        '{"model": {{model}}, "prompt": {{prompt}}, "max_tokens": {{max_tokens}}, "stream": true}'
    )
    path: str = ""  # URL path appended to base_url
    thinking_path: str = ""
    answer_path: str = "text"
    usage_path: str = "usage"
    finish_path: str = "finish_reason"
    done_path: str = "done"
    error_path: str = "error"
    done_sentinel: str = "[DONE]"
    # Alternative to the paths above: read a packet's kind from ``kind_path`` and map its values
    # (e.g. {"thinking": "thinking", "text": "answer", "ping": "heartbeat"}); text then comes from
    # ``answer_path`` whatever the kind.
    kind_path: str = ""
    kind_map: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class EndpointSpec:
    protocol: str
    base_url: str
    model: str = ""
    api_key: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    timeouts: Timeouts = field(default_factory=Timeouts)
    params: dict[str, Any] = field(default_factory=dict)  # sampling params passed through
    generic: GenericFormat = field(default_factory=GenericFormat)
    price_in_per_1k: float = 0.0
    price_out_per_1k: float = 0.0
    currency: str = "USD"
    max_input_tokens: int = 0
    tokenizer: str = ""  # runner.tokenizers reference; "" = character estimate, labelled as such
    # one SSE event / WebSocket message larger than this ends the request as a protocol error
    max_event_bytes: int = 1 << 20


_AUTH_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie", "signature", "credential", "password")


def is_secret_header(name: str) -> bool:
    """Whether a header grants access (Authorization, X-Api-Key, Cookie, …): kept secret everywhere."""
    return any(word in name.lower() for word in _AUTH_HEADER_WORDS)


def endpoint_secrets(ep: EndpointSpec) -> list[str]:
    """Every value that grants access: the API key and each auth-bearing header's value (by name:
    Authorization, X-Api-Key, Cookie, …), longest first so a scrub never leaves a tail behind."""
    found = [ep.api_key] if ep.api_key else []
    for name, value in ep.headers.items():
        if value and is_secret_header(name):
            found.append(value)
            if " " in value:  # "Bearer sk-…": the token alone is the secret too
                found.append(value.split(" ", 1)[1])
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret in it replaced by ••••, longest first (empty ones ignored)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, "••••")
    return text


@dataclass(slots=True)
class Prompt:
    """One item to send. ``messages`` wins over ``text`` for chat protocols."""

    id: str
    text: str = ""
    messages: list[dict[str, Any]] | None = None
    input_tokens: int = 0  # counted by the configured tokenizer; 0 = unknown
    max_tokens: int | None = None
    expected: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # dataset item's subject, level, unique_id
    # The request's own parameters (temperature, tools, stop…) from a captured or replayed request,
    # merged over the endpoint's params; the adapter still owns the fields it streams and measures by.
    params: dict[str, Any] | None = None
    # A conversation this prompt is one turn of (replays): turns go in arrival order, each carrying
    # the model's own earlier answers as history (runner.conversations).
    session: str | None = None


@dataclass(slots=True)
class ProfileSpec:
    """Load shape. ``kind``:

    - ``users``: closed loop; ramp up at ``spawn_rate`` users/s to ``users``, hold, ramp down.
    - ``stages``: list of ``{"duration_s", "target"}``; target is users (``stage_mode="users"``)
      or requests/s (``stage_mode="rate"``).
    - ``rate``: open loop at ``rate`` (per ``rate_unit``), ``arrival`` poisson or constant.
    - ``sweep``: one level after another for ``level_duration_s`` each (``sweep_mode`` users|rate).
    - ``replay``: ``replay`` entries ``{"t_s": offset, "prompt": index}`` at ``speed``×.
    """

    kind: Literal["users", "stages", "rate", "sweep", "replay"] = "users"
    users: int = 1
    spawn_rate: float = 1.0
    hold_s: float = 0.0
    ramp_down_s: float = 0.0
    stages: list[dict[str, float]] = field(default_factory=list)
    stage_mode: Literal["users", "rate"] = "users"
    rate: float = 1.0
    rate_unit: Literal["qps", "qpm"] = "qps"
    arrival: Literal["poisson", "constant"] = "poisson"
    sweep_levels: list[float] = field(default_factory=list)
    sweep_mode: Literal["users", "rate", "budget"] = "users"
    level_duration_s: float = 30.0
    # A thinking-budget sweep (sweep_mode "budget"): the same ``users`` at every level, each level
    # sending ``budget_param`` (max_tokens or reasoning_effort) at its value from ``budget_levels``.
    budget_param: str = "max_tokens"
    budget_levels: list[str] = field(default_factory=list)
    replay: list[dict[str, float]] = field(default_factory=list)
    speed: float = 1.0
    seed: int = 0
    # Open loop only: at most this many requests in flight (0 = unbounded). Sends held back by the
    # cap go out late; their latency still counts from the scheduled time and they are reported.
    max_concurrency: int = 0
    # Closed loop: each user holds a conversation of this many turns (a dataset item's user turns,
    # the model's own answers as history), waiting think_s between turns.
    turns: int = 1
    think_s: float = 0.0
    # Shards only: this shard's offset within the whole ramp / constant schedule (set by split_profile).
    phase_s: float = 0.0

    def __post_init__(self) -> None:
        if self.kind == "sweep" and self.sweep_mode == "budget" and not self.sweep_levels:
            self.sweep_levels = [float(self.users)] * len(self.budget_levels)  # the load stays put


@dataclass(slots=True)
class Slo:
    ttft_ms: float | None = 2000.0
    tokens_per_s: float | None = 20.0
    e2e_ms: float | None = None


def _endpoint(data: dict[str, Any]) -> EndpointSpec:
    ep = dict(data)
    ep["timeouts"] = Timeouts(**ep.get("timeouts", {}))
    ep["generic"] = GenericFormat(**ep.get("generic", {}))
    return EndpointSpec(**ep)


@dataclass(slots=True)
class RunSpec:
    endpoint: EndpointSpec
    prompts: list[Prompt]
    profile: ProfileSpec = field(default_factory=ProfileSpec)
    duration_s: float | None = 60.0
    max_requests: int | None = None
    bucket_edges: list[int] = field(default_factory=lambda: [0, 1024, 4096, 16384, 32768, 49152])
    slo: Slo = field(default_factory=Slo)
    length_is_failure: bool = False
    sample_order: Literal["sequential", "shuffled"] = "sequential"
    shard_index: int = 0
    shard_count: int = 1
    run_started_epoch: float | None = None  # wall clock of the run's start: labels only
    # Where this shard's clock starts in the run's seconds. Shards count their seconds from their own
    # monotonic start plus this offset, never from a worker's wall clock, so machines whose clocks
    # disagree still add their seconds up right.
    start_offset_s: float = 0.0
    keep_packet_text: bool = False
    warm_connections: int = -1  # pre-opened connections; -1 = as many as peak concurrency (capped)
    # Paired A/B: every scheduled prompt goes to each of these endpoints (``endpoint`` is then only
    # the default for shared settings); records carry the variant's index. ``max_requests`` counts
    # scheduled prompts, so each variant gets that many requests.
    variants: list[EndpointSpec] = field(default_factory=list)
    ab_mode: Literal["simultaneous", "interleaved"] = "simultaneous"
    drain_s: float = 30.0  # after the end, in-flight requests get this long before they are cancelled
    # Closed loop: a user whose request failed at connection level waits backoff_base_s, doubling
    # with each failure in a row up to backoff_max_s (0 = never waits); a 429's Retry-After is
    # honoured up to retry_after_max_s. Open loop keeps its schedule and only reports both.
    # where load may go (runner.policy): {"allow": [...], "deny": [...]} of CIDRs, hosts, host:port
    target_policy: dict[str, list[str]] = field(default_factory=dict)
    backoff_base_s: float = 0.1
    backoff_max_s: float = 10.0
    retry_after_max_s: float = 60.0
    prompt_template: str = ""  # applied when the prompts were built ({prompt} placeholder); kept to say how

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        d = dict(data)
        d["endpoint"] = _endpoint(d.pop("endpoint"))
        d["variants"] = [_endpoint(v) for v in d.get("variants", [])]
        d["prompts"] = [Prompt(**p) for p in d.get("prompts", [])]
        d["profile"] = ProfileSpec(**d.get("profile", {}))
        d["slo"] = Slo(**d.get("slo", {}))
        return cls(**d)
