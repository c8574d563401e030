"""The mirror measures what passes through with the engine's own parsers, stamped on arrival."""

from __future__ import annotations

import json

from runner.mirror.tap import ResponseTap, protocol_for
from runner.records import Outcome

MS = 1_000_000


def _sse(*events: dict | str) -> list[bytes]:  # type: ignore[type-arg]
    return [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events]


def _delta(text: str, finish: str | None = None) -> dict:  # type: ignore[type-arg]
    return {"choices": [{"delta": {"content": text}, "finish_reason": finish}]}


def test_a_stream_is_measured_from_the_stamped_chunks() -> None:
    tap = ResponseTap("/v1/chat/completions", 0, 0)
    tap.head(200, "text/event-stream")
    chunks = _sse(
        {"choices": [{"delta": {"role": "assistant"}, "finish_reason": None}]},
        _delta("Hello"),
        _delta(" world"),
        _delta("", "stop"),
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}},
        "[DONE]",
    )
    for k, chunk in enumerate(chunks):
        tap.feed((5 + 10 * k) * MS, chunk[:7])  # split mid-event: the parser joins the halves
        tap.feed((5 + 10 * k) * MS, chunk[7:])
    rec = tap.record("m1", 60 * MS)
    assert rec.ok and rec.answer_text == "Hello world"
    assert rec.ttft_ms == 15.0 and rec.output_tokens == 2 and rec.input_tokens == 3


def test_a_whole_json_answer_arrives_at_its_last_byte() -> None:
    tap = ResponseTap("/v1/chat/completions", 0, 0)
    tap.head(200, "application/json")
    body = json.dumps(
        {
            "choices": [{"message": {"content": "forty two"}, "finish_reason": "stop"}],
            "usage": {"completion_tokens": 2},
        }
    ).encode()
    tap.feed(10 * MS, body[:20])
    tap.feed(30 * MS, body[20:])
    rec = tap.record("m1", 31 * MS)
    assert rec.ok and rec.answer_text == "forty two" and rec.ttft_ms == 30.0 and rec.finish_reason == "stop"


def test_an_anthropic_whole_answer_is_read_too() -> None:
    tap = ResponseTap("/v1/messages", 0, 0)
    tap.head(200, "application/json")
    tap.feed(
        MS, json.dumps({"content": [{"type": "text", "text": "hi"}], "stop_reason": "max_tokens"}).encode()
    )
    rec = tap.record("m1", MS)
    assert rec.ok and rec.answer_text == "hi" and rec.finish_reason == "length"
    assert protocol_for("/v1/messages") == "anthropic" and protocol_for("/v1/completions") == "openai-chat"


def test_an_error_status_is_an_http_failure_with_its_body() -> None:
    tap = ResponseTap("/v1/chat/completions", 0, 0)
    tap.head(429, "application/json")
    tap.feed(MS, b'{"error": {"message": "slow down"}}')
    rec = tap.record("m1", MS)
    assert rec.outcome == Outcome.RATE_LIMITED.value and "slow down" in rec.error and rec.http_status == 429


def test_garbage_is_a_protocol_error_not_an_exception() -> None:
    tap = ResponseTap("/v1/chat/completions", 0, 0)
    tap.head(200, "text/event-stream")
    tap.feed(MS, b"data: {not json\n\n")
    assert tap.record("m1", MS).outcome == Outcome.PROTOCOL_ERROR.value
    whole = ResponseTap("/v1/chat/completions", 0, 0)
    whole.head(200, "application/json")
    whole.feed(MS, b"\xff\xfe")
    assert whole.record("m1", MS).outcome == Outcome.PROTOCOL_ERROR.value


def test_a_failure_seen_while_forwarding_wins() -> None:
    tap = ResponseTap("/v1/chat/completions", 0, 0)
    tap.head(200, "text/event-stream")
    tap.feed(MS, _sse(_delta("partial"))[0])
    tap.fail(Outcome.CONNECTION_ERROR, "upstream broke mid-stream")
    rec = tap.record("m1", 2 * MS)
    assert rec.outcome == Outcome.CONNECTION_ERROR.value and rec.answer_text == "partial"


async def test_measuring_waits_behind_new_work_and_nothing_is_lost_at_the_stop() -> None:
    """A burst of records to make must not hold the loop: something arriving meanwhile (a new
    request) runs after at most one of them; the stop makes every one still queued."""
    import asyncio

    from runner.mirror.measure import Measurer

    order: list[str] = []
    errors: list[Exception] = []
    m = Measurer(errors.append)
    m.start()
    for i in range(100):
        m.defer(lambda i=i: order.append(f"record {i}"))
    m.defer(lambda: 1 / 0)  # a failing measurement is reported, not raised
    await asyncio.sleep(0)  # the measurer's first turn
    asyncio.get_running_loop().call_soon(order.append, "new request")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert "new request" in order and order.index("new request") <= 2, order[:5]
    await m.close()
    assert [x for x in order if x != "new request"] == [f"record {i}" for i in range(100)]
    assert m.pending == 0 and m.done == 101 and isinstance(errors[0], ZeroDivisionError)
    m.defer(lambda: order.append("late"))  # after the stop: made at once
    assert order[-1] == "late"
