"""Every adapter against scripted streams: packet kinds, timing, and each malformed case
ending as a classified failure (never a crash or a hang)."""

from __future__ import annotations

import json

import pytest

from runner.engine import run
from runner.records import RequestRecord
from runner.spec import EndpointSpec, GenericFormat, Prompt, RunSpec, Timeouts
from tests.runner.rawserver import DONE, chat_chunk, raw_server, usage_chunk

pytestmark = pytest.mark.timeout(30)


async def one(
    url: str,
    protocol: str = "openai-chat",
    timeouts: Timeouts | None = None,
    generic: GenericFormat | None = None,
) -> RequestRecord:
    ep = EndpointSpec(
        protocol=protocol,
        base_url=url,
        model="m",
        timeouts=timeouts or Timeouts(),
        generic=generic or GenericFormat(),
    )
    spec = RunSpec(
        endpoint=ep,
        prompts=[Prompt(id="p", text="hi there")],
        duration_s=None,
        max_requests=1,
        warm_connections=0,
    )
    result = await run(spec)
    assert len(result.records) == 1
    return result.records[0]


async def test_role_chunk_and_heartbeats_never_count_as_ttft() -> None:
    script = [
        chat_chunk(content="", role=True),
        0.05,
        b": ping\n\n",
        0.05,
        b": ping\n\n",
        0.1,
        chat_chunk("Hello"),
        0.02,
        chat_chunk(" world"),
        chat_chunk(finish="stop"),
        usage_chunk(3, 2),
        DONE,
    ]
    async with raw_server(script) as url:
        rec = await one(url)
    assert rec.outcome == "success", rec.error
    assert rec.first_chunk_ms is not None and rec.first_chunk_ms < 50
    assert 195 <= rec.ttft_ms <= 260  # type: ignore[operator]
    assert rec.heartbeats == 2
    assert rec.answer_text == "Hello world"
    assert rec.usage_output_tokens == 2 and rec.output_tokens == 2
    assert len(rec.itl_ms) == 1 and 15 <= rec.itl_ms[0] <= 60


async def test_reasoning_stream_ttft_at_first_thinking_and_later_answer() -> None:
    script = [
        chat_chunk(reasoning="Let me"),
        0.1,
        chat_chunk(reasoning=" think"),
        0.1,
        chat_chunk("42"),
        chat_chunk(finish="stop"),
        DONE,
    ]
    async with raw_server(script) as url:
        rec = await one(url)
    assert rec.outcome == "success"
    assert rec.ttft_ms is not None and rec.ttft_answer_ms is not None
    assert rec.ttft_answer_ms - rec.ttft_ms >= 190
    assert rec.thinking_ms is not None and rec.thinking_ms >= 190


async def test_think_tags_inside_content_split_even_across_chunks() -> None:
    script = [
        chat_chunk("<thi"),
        chat_chunk("nk>pondering"),
        0.05,
        chat_chunk("</think>"),
        0.05,
        chat_chunk("Answer"),
        chat_chunk(finish="stop"),
        DONE,
    ]
    async with raw_server(script) as url:
        rec = await one(url)
    assert rec.outcome == "success"
    assert rec.answer_text == "Answer"
    assert rec.thinking_chars == len("pondering")
    assert rec.ttft_answer_ms - rec.ttft_ms >= 90  # type: ignore[operator]


@pytest.mark.parametrize(
    ("script", "outcome", "fragment"),
    [
        ([chat_chunk("Hi"), b'data: {"choices":[{"delta":{"cont'], "protocol_error", "malformed JSON"),
        ([chat_chunk("Hi"), chat_chunk(" there")], "protocol_error", "before its end marker"),
        ([chat_chunk("Hi"), 0.05, "reset"], "connection_error", ""),
        ([b"\xff\xfe\x00garbage\x81\x82\n\n"], "protocol_error", "not UTF-8"),
        ([b"data: [1, 2]\n\n"], "protocol_error", "not a JSON object"),
        ([chat_chunk(finish="stop"), DONE], "empty_answer", ""),
        (
            [chat_chunk(reasoning="hmm"), chat_chunk(finish="length"), DONE],
            "truncated_thinking",
            "max_tokens",
        ),
        ([chat_chunk(reasoning="hmm"), chat_chunk(finish="stop"), DONE], "truncated_thinking", "no answer"),
        ([b'data: {"error": {"message": "overloaded", "code": 503}}\n\n'], "http_error", "overloaded"),
    ],
    ids=[
        "cut-json",
        "missing-done",
        "reset",
        "garbage",
        "not-object",
        "empty",
        "think-length",
        "think-only",
        "error-chunk",
    ],
)
async def test_malformed_streams_end_as_classified_failures(
    script: list, outcome: str, fragment: str
) -> None:
    async with raw_server(script) as url:
        rec = await one(url)
    assert rec.outcome == outcome, rec.error
    assert fragment in rec.error


async def test_partial_record_keeps_what_was_measured_before_a_reset() -> None:
    async with raw_server([chat_chunk("Hi"), 0.05, chat_chunk(" there"), 0.02, "reset"]) as url:
        rec = await one(url)
    assert rec.outcome == "connection_error"
    assert rec.ttft_ms is not None and rec.content_chunks == 2 and rec.answer_text == "Hi there"


async def test_length_stop_is_success_with_flag() -> None:
    async with raw_server([chat_chunk("Hi"), chat_chunk(finish="length"), DONE]) as url:
        rec = await one(url)
    assert rec.outcome == "success" and rec.length_stopped


async def test_http_errors_and_context_overflow() -> None:
    async with raw_server([b'{"message": "boom"}'], status=500) as url:
        rec = await one(url)
    assert rec.outcome == "http_error" and rec.http_status == 500
    msg = b'{"object":"error","message":"This model\'s maximum context length is 4096 tokens.","code":400}'
    async with raw_server([msg], status=400) as url:
        rec = await one(url)
    assert rec.outcome == "context_overflow" and rec.http_status == 400


async def test_heartbeat_only_stream_is_alive_but_stalled() -> None:
    script: list = [chat_chunk(content="", role=True)] + [b": ping\n\n", 0.1] * 20
    async with raw_server(script) as url:
        rec = await one(url, timeouts=Timeouts(first_byte=0.5, idle=0.5, total=10))
    assert rec.outcome == "timeout" and rec.timeout_kind == "first_byte"
    assert rec.stalled and "alive but stalled" in rec.error
    assert rec.heartbeats >= 3


async def test_silent_dead_stream_times_out_without_stalled_flag() -> None:
    async with raw_server([chat_chunk("Hi"), 5.0, DONE]) as url:
        rec = await one(url, timeouts=Timeouts(idle=0.3, total=10))
    assert rec.outcome == "timeout" and not rec.stalled
    assert rec.e2e_ms is not None and rec.e2e_ms < 1500


async def test_total_timeout() -> None:
    script: list = [chat_chunk(f"t{i}") if i % 2 == 0 else 0.05 for i in range(200)]
    async with raw_server(script) as url:
        rec = await one(url, timeouts=Timeouts(idle=5, total=0.5))
    assert rec.outcome == "timeout" and rec.timeout_kind == "total"


async def test_wrong_url_is_connection_error() -> None:
    rec = await one("http://127.0.0.1:9/v1", timeouts=Timeouts(connect=2))
    assert rec.outcome == "connection_error"


def _anthropic(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


async def test_anthropic_thinking_text_ping_usage() -> None:
    script = [
        _anthropic("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 7}}}),
        _anthropic("ping", {"type": "ping"}),
        0.05,
        _anthropic("content_block_start", {"type": "content_block_start", "index": 0}),
        _anthropic(
            "content_block_delta",
            {"type": "content_block_delta", "delta": {"type": "thinking_delta", "thinking": "hm"}},
        ),
        0.1,
        _anthropic(
            "content_block_delta",
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Yes"}},
        ),
        _anthropic(
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}},
        ),
        _anthropic("message_stop", {"type": "message_stop"}),
    ]
    async with raw_server(script) as url:
        rec = await one(url, protocol="anthropic")
    assert rec.outcome == "success", rec.error
    assert rec.heartbeats == 1
    assert rec.ttft_ms is not None and rec.ttft_ms >= 45
    assert rec.ttft_answer_ms - rec.ttft_ms >= 90  # type: ignore[operator]
    assert rec.usage_input_tokens == 7 and rec.usage_output_tokens == 3 and rec.finish_reason == "stop"


async def test_anthropic_error_event_and_cut_stream() -> None:
    err = _anthropic(
        "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    )
    async with raw_server([err]) as url:
        rec = await one(url, protocol="anthropic")
    assert rec.outcome == "http_error" and "Overloaded" in rec.error
    cut = [
        _anthropic(
            "content_block_delta",
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "a"}},
        )
    ]
    async with raw_server(cut) as url:
        rec = await one(url, protocol="anthropic")
    assert rec.outcome == "protocol_error"


async def test_completions_adapter() -> None:
    chunk = b'data: {"choices":[{"text":"Hi","index":0,"finish_reason":null}]}\n\n'
    fin = b'data: {"choices":[{"text":"","index":0,"finish_reason":"stop"}]}\n\n'
    async with raw_server([chunk, fin, DONE]) as url:
        rec = await one(url, protocol="openai-completions")
    assert rec.outcome == "success" and rec.answer_text == "Hi"


GENERIC = GenericFormat(
    body_template='{"q": {{prompt}}, "n": {{max_tokens}}}',
    path="gen",
    thinking_path="out.think",
    answer_path="out.text",
    usage_path="stats",
    finish_path="out.finish",
    done_path="done",
    error_path="err",
)


async def test_generic_sse_by_paths() -> None:
    lines = [
        b'data: {"out": {"think": "t"}}\n\n',
        0.05,
        b'data: {"out": {"text": "A"}}\n\n',
        b'data: {"stats": {"prompt_tokens": 2, "completion_tokens": 2}}\n\n',
        b'data: {"done": true}\n\n',
    ]
    async with raw_server(lines) as url:
        rec = await one(url, protocol="generic-sse", generic=GENERIC)
    assert rec.outcome == "success", rec.error
    assert rec.ttft_answer_ms - rec.ttft_ms >= 45  # type: ignore[operator]
    assert rec.usage_output_tokens == 2


async def test_generic_ws_with_kind_map_and_broken_json() -> None:
    fmt = GenericFormat(
        body_template='{"prompt": {{prompt}}}',
        path="ws",
        kind_path="type",
        answer_path="text",
        usage_path="usage",
        finish_path="finish_reason",
        kind_map={"text": "answer", "ping": "heartbeat"},
    )
    frames = [
        b'{"type": "ping"}',
        0.05,
        b'{"type": "thinking", "text": "x"}',
        b'{"type": "text", "text": "ok"}',
        b'{"type": "usage", "usage": {"completion_tokens": 2}}',
        b'{"type": "done", "finish_reason": "stop"}',
    ]
    async with raw_server(frames, ws=True) as url:
        rec = await one(url, protocol="generic-ws", generic=fmt)
    assert rec.outcome == "success", rec.error
    assert rec.heartbeats == 1 and rec.answer_text == "ok" and rec.ttft_ms >= 45  # type: ignore[operator]
    async with raw_server([b'{"type": "text", "te', "close"], ws=True) as url:
        rec = await one(url, protocol="generic-ws", generic=fmt)
    assert rec.outcome == "protocol_error"
    async with raw_server([b'{"type": "text", "text": "a"}', "close"], ws=True) as url:
        rec = await one(url, protocol="generic-ws", generic=fmt)
    assert rec.outcome == "protocol_error" and "end marker" in rec.error


async def test_openai_sdk_mode_measures_and_classifies() -> None:
    script = [
        chat_chunk(content="", role=True),
        0.1,
        chat_chunk("Hi"),
        chat_chunk(finish="stop"),
        usage_chunk(3, 1),
        DONE,
    ]
    async with raw_server(script) as url:
        rec = await one(url, protocol="openai-sdk")
    assert rec.outcome == "success", rec.error
    assert rec.ttft_ms is not None and rec.ttft_ms >= 95
    async with raw_server([b'{"error": {"message": "bad key"}}'], status=401) as url:
        rec = await one(url, protocol="openai-sdk")
    assert rec.outcome == "http_error" and rec.http_status == 401


async def test_answers_are_graded_against_the_expected_answer() -> None:
    from runner.engine import run as run_engine

    script = [
        chat_chunk("The answer is "),
        chat_chunk("$\\boxed{\\frac{1}{2}}$"),
        chat_chunk(finish="stop"),
        DONE,
    ]
    async with raw_server(script) as url:
        ep = EndpointSpec(protocol="openai-chat", base_url=url, model="m")
        prompts = [Prompt(id="right", text="q", expected="0.5"), Prompt(id="wrong", text="q", expected="3")]
        spec = RunSpec(endpoint=ep, prompts=prompts, duration_s=None, max_requests=2, warm_connections=0)
        result = await run_engine(spec)
    graded = {r.prompt_id: r.correct for r in result.records}
    assert graded == {"right": True, "wrong": False}
    assert result.summary["accuracy"]["rate"] == 0.5


async def test_long_prefill_is_bounded_by_first_byte_not_idle() -> None:
    # headers at once, first token after 1.5 s: idle (0.5 s) must not cut a legitimate prefill
    script = [chat_chunk(content="", role=True), 1.5, chat_chunk("Hi"), chat_chunk(finish="stop"), DONE]
    async with raw_server(script) as url:
        rec = await one(url, timeouts=Timeouts(first_byte=5, idle=0.5, total=10))
    assert rec.outcome == "success" and rec.ttft_ms >= 1400  # type: ignore[operator]
    async with raw_server(script) as url:
        rec = await one(url, timeouts=Timeouts(first_byte=0.7, idle=5, total=10))
    assert rec.outcome == "timeout" and rec.timeout_kind == "first_byte"
    assert 650 <= rec.e2e_ms <= 1300  # type: ignore[operator]


async def test_a_stall_after_content_ends_one_idle_period_later() -> None:
    script = [chat_chunk(content="", role=True), 0.6, chat_chunk("Hi"), 5.0, DONE]
    async with raw_server(script) as url:
        rec = await one(url, timeouts=Timeouts(first_byte=5, idle=0.4, total=10))
    assert rec.outcome == "timeout" and rec.timeout_kind == "idle"
    assert 950 <= rec.e2e_ms <= 1500  # 0.6 s to the token + 0.4 s idle  # type: ignore[operator]


async def test_a_chunk_that_is_only_a_lone_angle_bracket_still_counts() -> None:
    script = [chat_chunk("<"), 0.1, chat_chunk(" 3"), chat_chunk(finish="stop"), DONE]
    async with raw_server(script) as url:
        rec = await one(url)
    assert rec.outcome == "success" and rec.answer_text == "< 3"
    assert rec.ttft_ms is not None and rec.ttft_ms < 60  # the "<" chunk, not the one 100 ms later
    async with raw_server([chat_chunk("x <"), chat_chunk(finish="stop"), DONE]) as url:
        rec = await one(url)
    assert rec.answer_text == "x <"


async def test_a_key_the_server_echoes_never_reaches_the_record() -> None:
    from runner.engine import run as run_engine
    from runner.spec import EndpointSpec, Prompt, RunSpec

    key, token = "sk-live-0123456789abcdef", "tok-feedbeef42"
    body = f'{{"error": "invalid api key {key}; header x-api-key={token}"}}'.encode()
    async with raw_server([body], status=401) as url:
        ep = EndpointSpec(
            protocol="openai-chat", base_url=url, model="m", api_key=key, headers={"X-Api-Key": token}
        )
        result = await run_engine(
            RunSpec(endpoint=ep, prompts=[Prompt(id="p", text="hi")], duration_s=None, max_requests=1)
        )
    rec = result.records[0]
    assert rec.outcome == "http_error" and rec.http_status == 401
    assert key not in rec.error and token not in rec.error and "••••" in rec.error


async def test_cached_prompt_tokens_from_usage_are_kept_per_request() -> None:
    usage = (
        b'data: {"choices": [], "usage": {"prompt_tokens": 1000, "completion_tokens": 2, '
        b'"prompt_tokens_details": {"cached_tokens": 768}}}\n\n'
    )
    async with raw_server([chat_chunk("Hi"), chat_chunk(finish="stop"), usage, DONE]) as url:
        rec = await one(url)
    assert rec.ok and rec.usage_input_tokens == 1000 and rec.cached_input_tokens == 768


def test_the_one_event_fast_path_gives_the_same_packets_as_the_general_path() -> None:
    from runner.analysis import StreamAnalyzer
    from runner.protocols.openai import OpenAIChunkParser
    from runner.sse import SseParser

    events = [
        chat_chunk(content="", role=True),
        chat_chunk(reasoning="hmm"),
        chat_chunk("<think>x"),
        chat_chunk("</think>Hi"),
        chat_chunk(" there"),
        chat_chunk(finish="stop"),
        usage_chunk(3, 4),
    ]
    general, fast = StreamAnalyzer(0, 0), StreamAnalyzer(0, 0)
    slow_parser, fast_parser = OpenAIChunkParser(general), OpenAIChunkParser(fast)
    sse = SseParser()
    for t, chunk in enumerate(events, start=1):
        for ev in sse.feed(chunk):
            slow_parser.event(ev.event, ev.data, t)
        assert chunk.startswith(b"data: {") and chunk.endswith(b"}\n\n")
        fast_parser.json_event(chunk[6:-2], t)
    assert [(p.kind, p.t_ns, p.text) for p in fast.packets] == [
        (p.kind, p.t_ns, p.text) for p in general.packets
    ]
    assert fast.usage == general.usage and fast.finish_reason == general.finish_reason == "stop"


async def test_a_one_event_chunk_that_is_not_an_object_is_a_protocol_error() -> None:
    async with raw_server([b'data: {"choices": [1, 2}\n\n', DONE]) as url:
        rec = await one(url)
    assert rec.outcome == "protocol_error" and "malformed JSON" in rec.error


async def test_several_events_in_one_network_chunk_are_each_a_packet() -> None:
    burst = b"".join(chat_chunk(w) for w in ("Hel", "lo", " wor", "ld"))  # one write, one chunk
    script = [
        chat_chunk(content="", role=True),
        0.05,
        burst,
        chat_chunk(finish="stop"),
        usage_chunk(3, 4),
        DONE,
    ]
    async with raw_server(script) as url:
        rec = await one(url)
    assert rec.outcome == "success" and rec.answer_text == "Hello world"
    assert rec.content_chunks == 4 and len(rec.itl_ms) == 3
    assert max(rec.itl_ms) < 5  # arrived together: one stamp for the four tokens
