"""The metric functions on hand-built packet timelines, and the registry every list derives from."""

from __future__ import annotations

import pytest

from runner.metrics import CSV_KEYS, DISTRIBUTION_KEYS, METRICS, PAIRED_KEYS, fill_timing, fill_tokens
from runner.records import Packet, PacketKind, RequestRecord

MS = 1_000_000  # nanoseconds
SEND = 5_000 * MS  # any monotonic origin: every metric is relative to the scheduled send


def timeline(
    *packets: tuple[PacketKind, float, str] | tuple[PacketKind, float], end_ms: float
) -> RequestRecord:
    """A record measured from ``(kind, ms after send[, text])`` packets, ending at ``end_ms``."""
    rec = RequestRecord(request_id="r", prompt_id="p")
    stamped = [Packet(p[0], SEND + round(p[1] * MS), p[2] if len(p) > 2 else "") for p in packets]
    fill_timing(rec, stamped, SEND, SEND + round(end_ms * MS))
    return rec


def test_thinking_then_answer_ttft_is_the_first_thought_and_thinking_lasts_until_the_answer() -> None:
    rec = timeline(
        (PacketKind.ROLE, 5),
        (PacketKind.THINKING, 100, "hm"),
        (PacketKind.THINKING, 150, "m"),
        (PacketKind.ANSWER, 300, "4"),
        (PacketKind.ANSWER, 320, "."),
        (PacketKind.USAGE, 330),
        end_ms=335,
    )
    assert rec.first_chunk_ms == 5 and rec.ttft_ms == 100 and rec.ttft_answer_ms == 300
    assert rec.thinking_ms == 200
    assert rec.itl_ms == [50, 150, 20]
    assert rec.e2e_ms == 335 and rec.max_gap_ms == 150
    assert rec.content_chunks == 4 and rec.answer_text == "4." and rec.thinking_chars == 3
    rec.usage_output_tokens = 11
    fill_tokens(rec, client_input=None, client_output=9)
    assert rec.output_tokens == 11 and rec.client_output_tokens == 9  # server usage wins, client kept
    assert rec.tpot_ms == pytest.approx((335 - 100) / 10)
    assert rec.tokens_per_s == pytest.approx(1000 / rec.tpot_ms)


def test_heartbeats_only_is_no_token_at_all_but_the_silence_is_measured() -> None:
    rec = timeline(
        (PacketKind.HEARTBEAT, 1000), (PacketKind.HEARTBEAT, 2000), (PacketKind.HEARTBEAT, 3000), end_ms=3500
    )
    assert rec.ttft_ms is None and rec.ttft_answer_ms is None and rec.first_chunk_ms is None
    assert rec.thinking_ms is None and rec.itl_ms == [] and rec.content_chunks == 0
    assert rec.heartbeats == 3 and rec.e2e_ms == 3500
    assert rec.max_gap_ms == 1000  # a heartbeat is a packet: the longest silence is between them
    fill_tokens(rec, client_input=12, client_output=0)
    assert rec.tpot_ms is None and rec.tokens_per_s is None


def test_role_only_first_chunk_is_the_first_chunk_but_never_ttft() -> None:
    rec = timeline(
        (PacketKind.ROLE, 50), (PacketKind.ANSWER, 400, "Hi"), (PacketKind.ANSWER, 410, "!"), end_ms=411
    )
    assert rec.first_chunk_ms == 50
    assert rec.ttft_ms == 400 and rec.ttft_answer_ms == 400 and rec.thinking_ms is None
    assert rec.itl_ms == [10]


def test_one_chunk_holding_many_tokens_has_no_gap_and_tpot_spreads_over_the_count() -> None:
    rec = timeline((PacketKind.ANSWER, 200, "the whole answer at once"), end_ms=210)
    assert rec.ttft_ms == 200 and rec.itl_ms == [] and rec.content_chunks == 1
    rec.usage_output_tokens = 21
    fill_tokens(rec, client_input=None, client_output=5)
    assert rec.tpot_ms == pytest.approx(10 / 20) and rec.tokens_per_s == pytest.approx(2000)


def test_one_token_has_no_decode_speed() -> None:
    rec = timeline((PacketKind.ANSWER, 200, "x"), end_ms=201)
    fill_tokens(rec, client_input=None, client_output=1)
    assert rec.tpot_ms is None and rec.tokens_per_s is None


def test_registry_entries_are_complete_and_lists_derive_from_flags() -> None:
    for key, m in METRICS.items():
        assert m.key == key and m.label and m.unit and m.formula and m.better in ("lower", "higher")
        assert hasattr(RequestRecord(request_id="r", prompt_id="p"), key), key
    assert set(PAIRED_KEYS) <= set(DISTRIBUTION_KEYS)
    assert tuple(k for k, m in METRICS.items() if m.distribution) == DISTRIBUTION_KEYS
    assert tuple(k for k, m in METRICS.items() if m.csv) == CSV_KEYS
    assert "itl_ms" not in CSV_KEYS  # a list per request, not a column


def test_headings_add_the_unit_unless_the_label_says_it() -> None:
    assert METRICS["itl_ms"].heading == "ITL (ms)"
    assert METRICS["tokens_per_s"].heading == "Tokens/s per request"
