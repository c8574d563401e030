"""``GET /metrics``: the simulator's state in vLLM's Prometheus names, consistent with its batching.

``vllm:num_requests_running`` is the batch (never above ``max_batch``), ``vllm:num_requests_waiting``
the FIFO queue behind it; the prefix-cache counters count prompt tokens looked up and found
(``--prefix-cache``); the spec-decode counters count drafted and accepted tokens
(``--spec-accept-rate``). ``vllm:kv_cache_usage_perc`` is the share of batch slots in use (0 when the
batch is unlimited): the simulator has slots, not KV blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from runner.simulator.config import SimConfig
from runner.simulator.plan import Plan


@dataclass(slots=True)
class ServerCounters:
    prompt_tokens: int = 0
    generation_tokens: int = 0
    prefix_cache_queries: int = 0
    prefix_cache_hits: int = 0
    spec_draft_tokens: int = 0
    spec_accepted_tokens: int = 0
    spec_drafts: int = 0
    finished: dict[str, int] = field(default_factory=dict)

    def admitted(self, plan: Plan) -> None:
        self.prompt_tokens += plan.prompt_tokens
        self.prefix_cache_queries += plan.prompt_tokens
        self.prefix_cache_hits += plan.cached_tokens

    def generated(self, plan: Plan, tokens: int) -> None:
        self.generation_tokens += tokens
        if plan.spec_accept_rate > 0 and plan.chunk_tokens > 1:
            self.spec_drafts += 1
            self.spec_draft_tokens += plan.chunk_tokens - 1
            self.spec_accepted_tokens += tokens - 1

    def on_finish(self, reason: str) -> None:
        self.finished[reason] = self.finished.get(reason, 0) + 1


def render_metrics(counters: ServerCounters, config: SimConfig, *, running: int, waiting: int) -> str:
    label = f'model_name="{config.model}"'
    usage = running / config.max_batch if config.max_batch else 0.0
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, value: float, labels: str = label) -> None:
        lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name}{{{labels}}} {value}"])

    metric("vllm:num_requests_running", "gauge", "Requests in the batch.", running)
    metric("vllm:num_requests_waiting", "gauge", "Requests queued behind the batch.", waiting)
    metric("vllm:kv_cache_usage_perc", "gauge", "Share of batch slots in use (0..1).", usage)
    c = counters
    metric("vllm:prompt_tokens_total", "counter", "Prompt tokens processed.", c.prompt_tokens)
    metric("vllm:generation_tokens_total", "counter", "Tokens generated.", c.generation_tokens)
    metric("vllm:prefix_cache_queries_total", "counter", "Prompt tokens looked up.", c.prefix_cache_queries)
    metric("vllm:prefix_cache_hits_total", "counter", "Prompt tokens found cached.", c.prefix_cache_hits)
    metric("vllm:spec_decode_num_drafts_total", "counter", "Speculative steps.", c.spec_drafts)
    metric("vllm:spec_decode_num_draft_tokens_total", "counter", "Tokens drafted.", c.spec_draft_tokens)
    metric(
        "vllm:spec_decode_num_accepted_tokens_total",
        "counter",
        "Draft tokens accepted.",
        c.spec_accepted_tokens,
    )
    lines.extend(
        ["# HELP vllm:request_success_total Finished requests.", "# TYPE vllm:request_success_total counter"]
    )
    for reason, n in sorted(c.finished.items()):
        lines.append(f'vllm:request_success_total{{{label},finished_reason="{reason}"}} {n}')
    return "\n".join(lines) + "\n"
