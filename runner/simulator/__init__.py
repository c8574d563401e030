"""An LLM inference server stand-in with known, precise delays (``python -m runner.simulator``).

Used for demos, for tests that check the load engine's metrics against delays set here, and for
benchmarks. aiohttp.web on uvloop when importable; Django-free like the rest of ``runner``.

Endpoints (standard wire formats):

- ``POST /v1/chat/completions`` — OpenAI Chat Completions. Streaming: a role-only chunk as soon as
  the stream opens (before TTFT, so a client that times it as the first token is visibly wrong),
  thinking in ``delta.reasoning_content`` (or ``<think>…</think>`` in ``delta.content`` with
  ``think_format="tags"``), answer in ``delta.content``, a chunk with ``finish_reason``, a
  ``choices: []`` usage chunk if ``stream_options.include_usage`` (or ``force_include_usage``),
  then ``data: [DONE]``. Heartbeats are SSE comments ``: ping``.
- ``POST /v1/completions`` — OpenAI Completions (``choices[0].text``); thinking, having no field
  there, always arrives as ``<think>`` tags in the text.
- ``POST /v1/messages`` — Anthropic Messages: ``message_start``, a thinking block
  (``thinking_delta``, ``signature_delta``), a text block (``text_delta``), ``message_delta`` with
  ``stop_reason`` end_turn|max_tokens and ``usage.output_tokens``, ``message_stop``; heartbeats
  ``event: ping``; in-stream errors ``event: error``.
- ``GET /v1/ws`` — WebSocket, described below. ``GET /v1/models``, ``GET /health``.
- ``GET /sim/log[?clear=1]`` — per-request server-side records (``request_id`` from ``x-request-id``,
  ``received_ns``, ``first_chunk_ns``, ``last_chunk_ns``, ``prompt_tokens``, ``completion_tokens``,
  ``queued_ms``, …), times from ``time.perf_counter_ns()`` (CLOCK_MONOTONIC on Linux, so comparable
  with a client process on the same host). ``first_chunk_ns`` is stamped just before writing the
  first content (thinking or answer) chunk.
- ``GET /sim/config``, ``POST /sim/config`` — read or patch ``SimConfig`` at runtime (JSON object).

Tokens: input tokens are the whitespace-separated words of the prompt (for chat and Anthropic, all
message texts and the system prompt joined). Output tokens are words of a small fixed vocabulary
with a leading space (``" the"``), one word = one token, deterministic per ``seed``. Thinking counts
against ``max_tokens``/``max_completion_tokens``; a cut gives finish ``length``. vLLM's
``ignore_eos: true`` makes the stream exactly ``max_tokens`` long.

Timing: chunk ``k`` is due at ``start + ttft + k * itl`` on the monotonic clock, where ``start`` is
when the request body was read (or when a ``max_batch`` slot was granted) and ``ttft`` adds
``prefill_us_per_token`` per uncached input token.

WebSocket (``GET /v1/ws``): the client sends one text frame
``{"prompt": str, "max_tokens": int, "model": str}`` (or ``"messages": [...]`` instead of
``prompt``); the server answers with JSON text frames, one packet per frame, routed by ``type``::

    {"type": "thinking", "text": " the"}        thinking tokens (think_format="field")
    {"type": "text", "text": " of"}             answer tokens (and <think> tags with "tags")
    {"type": "ping"}                            heartbeat
    {"type": "usage", "usage": {"prompt_tokens": 12, "completion_tokens": 64}}
    {"type": "done", "finish_reason": "stop"}   or "length"; the server then closes
    {"type": "error", "error": "message"}       instead of usage/done; the server then closes

Faults: header ``x-sim-fault: NAME`` forces one for a request (see ``FAULTS``); ``error_rate``,
``empty_rate`` and ``truncate_rate`` pick them at random (seeded). ``http_500``/``http_429`` refuse a
WebSocket upgrade; the others happen on the open stream.

Accuracy: with ``answer_key`` (``builtin:math500`` or a dataset file) a question found in the prompt
is answered with a reasoning preamble in the thinking and the reference in ``\\boxed{}``; exactly
``round(wrong_rate * N)`` items (by seed) get a wrong value, and ``leak_rate`` of answers open with
reasoning text. Thinking scales with ``reasoning_effort`` (low ½, medium 1, high 2 × thinking_tokens)
and is cut by ``max_tokens`` like any output (see :mod:`runner.simulator.answers`).
"""

from runner.simulator.config import ERROR_FAULTS, FAULTS, SimConfig
from runner.simulator.process import SimulatorProcess
from runner.simulator.server import FAULT_HEADER, create_app, run_simulator, serve
from runner.simulator.tokens import VOCAB

__all__ = [
    "ERROR_FAULTS",
    "FAULTS",
    "FAULT_HEADER",
    "VOCAB",
    "SimConfig",
    "SimulatorProcess",
    "create_app",
    "run_simulator",
    "serve",
]
