"""Every per-request metric, defined once: unit, formula, which way is better, and where it shows.

:data:`METRICS` is the registry: the README's glossary, the CLI table, the summary's distributions, the
comparison's rows, the A/B pairing, the per-request CSV and every dashboard label derive from it
(:data:`DISTRIBUTION_KEYS`, :data:`PAIRED_KEYS`, :data:`CSV_KEYS`). :func:`fill_timing` and
:func:`fill_tokens` are the only places the numbers are computed. :data:`CONVENTIONS` lists the other
tools' definitions, computed side by side so numbers can be reconciled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from runner.records import CONTENT_KINDS, Packet, PacketKind, RequestRecord


@dataclass(frozen=True, slots=True)
class Metric:
    """One per-request metric. ``key`` is its name everywhere (record field, summary key, CSV column).

    ``distribution``: summarised as percentiles over successful requests, in the CLI table, the run page
    and the comparison (with its noise test). ``paired``: kept in every run's end-of-run sample and
    paired prompt by prompt in A/B runs. ``csv``: a column of the per-request CSV.
    """

    key: str
    label: str  # the glossary's name, used as is on every page
    unit: str
    formula: str  # the glossary text
    better: str  # direction: "lower" | "higher"
    distribution: bool = False
    paired: bool = False
    csv: bool = False

    @property
    def heading(self) -> str:
        """The label with its unit, unless the label already says it: "TTFT (ms)", "Tokens/s per request"."""
        return self.label if self.unit.lower() in self.label.lower() else f"{self.label} ({self.unit})"


# In the order pages and tables show them: the headline numbers (TTFT, decode speed, E2E) first.
METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric(
            "ttft_ms",
            "TTFT",
            "ms",
            "first thinking-or-answer packet − send (heartbeats and role-only chunks never count)",
            "lower",
            distribution=True,
            paired=True,
            csv=True,
        ),
        Metric(
            "tokens_per_s",
            "Tokens/s per request",
            "tokens/s",
            "(output tokens − 1) / (E2E − TTFT) = 1000 / TPOT",
            "higher",
            distribution=True,
            paired=True,
            csv=True,
        ),
        Metric(
            "e2e_ms",
            "End-to-end latency",
            "ms",
            "end of stream − send",
            "lower",
            distribution=True,
            paired=True,
            csv=True,
        ),
        Metric(
            "tpot_ms",
            "TPOT",
            "ms",
            "(E2E − TTFT) / (output tokens − 1)",
            "lower",
            distribution=True,
            csv=True,
        ),
        Metric(
            "itl_ms",
            "ITL",
            "ms",
            "every gap between consecutive content packets (pooled)",
            "lower",
            distribution=True,
        ),
        Metric(
            "ttft_answer_ms",
            "Time to first answer token",
            "ms",
            "first answer packet − send",
            "lower",
            distribution=True,
            csv=True,
        ),
        Metric(
            "first_chunk_ms",
            "First chunk",
            "ms",
            "first data packet of any kind − send",
            "lower",
            distribution=True,
        ),
        Metric(
            "thinking_ms",
            "Thinking duration",
            "ms",
            "first answer packet − first thinking packet",
            "lower",
            distribution=True,
            csv=True,
        ),
        Metric(
            "max_gap_ms", "Largest silent gap", "ms", "longest time with no packet at all", "lower", csv=True
        ),
        Metric(
            "schedule_lag_ms",
            "Schedule lag",
            "ms",
            "actual send − scheduled send (open loop; counted inside every latency)",
            "lower",
            csv=True,
        ),
    )
}

DISTRIBUTION_KEYS: tuple[str, ...] = tuple(k for k, m in METRICS.items() if m.distribution)
PAIRED_KEYS: tuple[str, ...] = tuple(k for k, m in METRICS.items() if m.paired)
CSV_KEYS: tuple[str, ...] = tuple(k for k, m in METRICS.items() if m.csv)

# name → (formula, who uses it). Computed in runner.summary for the same run.
CONVENTIONS: dict[str, tuple[str, str]] = {
    "ttft_ms": ("first thinking-or-answer packet − send", "llmperf headline; reasoning-aware"),
    "ttft_first_chunk_ms": (
        "first data chunk of any kind (role-only chunk included) − send",
        "clients that stamp the first SSE data line",
    ),
    "ttft_answer_ms": ("first answer packet − send (thinking ignored)", "answer-only clients"),
    "itl_pooled_ms": ("all inter-chunk gaps of all requests, pooled", "vLLM bench serve ITL"),
    "itl_request_mean_ms": (
        "(E2E − TTFT) / (output tokens − 1) per request",
        "AIPerf / GuideLLM inter-token latency; = TPOT",
    ),
    "tpot_ms": ("(E2E − TTFT) / (output tokens − 1)", "vLLM bench serve TPOT (excl. 1st token)"),
    "tpot_incl_first_ms": ("E2E / output tokens", "GuideLLM time per output token (first token included)"),
    "tokens_per_s": ("(output tokens − 1) / (E2E − TTFT)", "llmperf headline decode speed"),
    "tokens_per_s_e2e": ("output tokens / E2E", "per-request throughput including TTFT"),
    "output_tokens_usage": (
        "server usage.completion_tokens",
        "vLLM bench serve, AIPerf (server_token_count)",
    ),
    "output_tokens_client": (
        "client tokenizer on streamed text",
        "retokenized counts (SGLang bench, AIPerf)",
    ),
}


_NAMES = {k: k.value for k in PacketKind}
_HEARTBEAT, _THINKING, _ANSWER = PacketKind.HEARTBEAT, PacketKind.THINKING, PacketKind.ANSWER


def fill_timing(
    rec: RequestRecord, packets: list[Packet], sched_ns: int, end_ns: int, keep_text: bool = False
) -> None:
    """Timing metrics from the stamped timeline, all relative to the scheduled send."""
    first_chunk = ttft = first_answer = first_think = last_think = prev_content = None
    prev_any = sched_ns
    max_gap = 0
    itl: list[float] = []
    answer: list[str] = []
    beats = chunks = thinking_chars = 0
    timeline: list[tuple[object, ...]] = []
    names, content_kinds = _NAMES, CONTENT_KINDS
    for p in packets:
        t = p.t_ns
        if t - prev_any > max_gap:
            max_gap = t - prev_any
        prev_any = t
        kind = p.kind
        # tuples of numbers drop out of the garbage collector's view; lists would stay in it
        if keep_text:
            timeline.append((names[kind], (t - sched_ns) / 1e6, p.tokens, len(p.text), p.text))
        else:
            timeline.append((names[kind], (t - sched_ns) / 1e6, p.tokens, len(p.text)))
        if kind is _HEARTBEAT:
            beats += 1
            continue
        if first_chunk is None:
            first_chunk = t
        if kind not in content_kinds:
            continue
        chunks += 1
        if ttft is None:
            ttft = t
        if prev_content is not None:
            itl.append((t - prev_content) / 1e6)
        prev_content = t
        if kind is _THINKING:
            thinking_chars += len(p.text)
            if first_think is None:
                first_think = t
            last_think = t
        elif kind is _ANSWER:
            answer.append(p.text)
            if first_answer is None:
                first_answer = t
    max_gap = max(max_gap, end_ns - prev_any)

    def ms(t: int | None) -> float | None:
        return None if t is None else (t - sched_ns) / 1e6

    rec.first_chunk_ms, rec.ttft_ms, rec.ttft_answer_ms = ms(first_chunk), ms(ttft), ms(first_answer)
    if first_think is not None:
        rec.thinking_ms = ((first_answer or last_think or first_think) - first_think) / 1e6
    rec.e2e_ms = (end_ns - sched_ns) / 1e6
    rec.itl_ms = itl
    rec.content_chunks = chunks
    rec.heartbeats = beats
    rec.max_gap_ms = max_gap / 1e6
    rec.answer_text = "".join(answer)
    rec.answer_chars = len(rec.answer_text)
    rec.thinking_chars = thinking_chars
    rec.packets = timeline


def fill_tokens(
    rec: RequestRecord,
    *,
    client_input: int | None,
    client_output: int | None,
    client_thinking: int | None = None,
    estimated: bool = False,
) -> None:
    """Token counts (server usage wins, client count kept beside it) and the metrics built on them."""
    rec.client_input_tokens, rec.client_output_tokens = client_input, client_output
    rec.tokens_estimated = estimated and rec.usage_output_tokens is None
    rec.input_tokens = rec.usage_input_tokens if rec.usage_input_tokens is not None else client_input
    rec.output_tokens = rec.usage_output_tokens if rec.usage_output_tokens is not None else client_output
    if rec.thinking_tokens is None and client_thinking:
        rec.thinking_tokens = client_thinking
    rec.tpot_ms = rec.tokens_per_s = None
    out, e2e, ttft = rec.output_tokens, rec.e2e_ms, rec.ttft_ms
    if out is not None and out > 1 and e2e is not None and ttft is not None and e2e > ttft:
        rec.tpot_ms = (e2e - ttft) / (out - 1)
        rec.tokens_per_s = 1000.0 / rec.tpot_ms


def estimate_tokens(text: str) -> int:
    """Fallback when no tokenizer is configured; always labelled "estimated" where shown."""
    return math.ceil(len(text) / 4) if text else 0
