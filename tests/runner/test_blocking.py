"""The engine for Celery workers: a child process as the sink gets every record and every delta."""

from __future__ import annotations

import io
import json
import sys
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from runner.blocking import run_blocking, serve_sink
from runner.simulator import SimulatorProcess
from runner.spec import EndpointSpec, ProfileSpec, Prompt, RunSpec
from runner.stats import LiveAggregate

pytestmark = pytest.mark.timeout(120)

CHILD = """
import json, sys, threading
from runner.blocking import serve_sink

class FileSink:  # serve_sink calls on_tick from its reader thread: one file, so a lock
    def __init__(self, path):
        self.out = open(path, "w")
        self.lock = threading.Lock()
    def on_records(self, batch):
        with self.lock:
            for r in batch:
                self.out.write(json.dumps({"record": r}) + "\\n")
    def on_tick(self, delta):
        with self.lock:
            self.out.write(json.dumps({"tick": delta}) + "\\n")

sink = FileSink(sys.argv[1])
serve_sink(sink, sys.stdin.buffer)
sink.out.close()
"""


def spec(url: str, **kw: Any) -> RunSpec:
    return RunSpec(
        endpoint=EndpointSpec(protocol="openai-chat", base_url=url, model="sim"),
        prompts=[Prompt(id="p", text="hello")],
        profile=ProfileSpec(kind="users", users=6, spawn_rate=1000),
        duration_s=None,
        **kw,
    )


def test_a_sink_process_receives_every_record_and_delta(tmp_path: Path) -> None:
    out = tmp_path / "sink.jsonl"
    with SimulatorProcess(ttft_ms=20, itl_ms=5, output_tokens=10) as sim:
        result = run_blocking(
            spec(sim.base_url, max_requests=150),
            sink_command=[sys.executable, "-c", CHILD, str(out)],
        )
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    records = [x["record"] for x in lines if "record" in x]
    assert len(result.records) == 150 and not result.errors
    assert sorted(r["request_id"] for r in records) == sorted(r.request_id for r in result.records)
    agg = LiveAggregate()
    for x in lines:
        if "tick" in x:
            agg.merge(x["tick"])
    snap = agg.snapshot()
    assert snap["completed"] + snap["failed"] == 150 == snap["started"]
    assert snap["output_tokens"] == sum(r.output_tokens or 0 for r in result.records)
    assert snap["shards_final"] == 1


def test_a_sink_process_that_dies_loses_no_measured_record() -> None:
    with SimulatorProcess(ttft_ms=20, itl_ms=5, output_tokens=10) as sim:
        result = run_blocking(
            spec(sim.base_url, max_requests=40),
            sink_command=[sys.executable, "-c", "import sys; sys.exit(3)"],
        )
    assert len(result.records) == 40 and all(r.ok for r in result.records)
    assert any("exited with code 3" in e for e in result.errors)


class SlowWriter:
    """A sink whose database is slow: each write waits (up to 10 s) for the tick sent after it."""

    def __init__(self) -> None:
        self.tick = threading.Event()
        self.records: list[dict[str, Any]] = []
        self.saw_tick_while_writing: list[bool] = []

    def on_records(self, batch: list[dict[str, Any]]) -> None:
        self.saw_tick_while_writing.append(self.tick.wait(10))
        self.records.extend(batch)

    def on_tick(self, delta: dict[str, Any]) -> None:
        self.tick.set()


def lines(*messages: Any) -> io.BytesIO:
    return io.BytesIO(b"".join(m if isinstance(m, bytes) else orjson.dumps(m) + b"\n" for m in messages))


def test_a_tick_is_not_held_behind_the_records_written_before_it() -> None:
    sink = SlowWriter()
    stream = lines({"records": [{"id": 1}, {"id": 2}]}, {"tick": {"seq": 1}}, b"\n", {"records": [{"id": 3}]})
    assert serve_sink(sink, stream) == 3
    assert sink.saw_tick_while_writing[0] and [r["id"] for r in sink.records] == [1, 2, 3]


def test_a_broken_line_fails_the_writer_after_the_records_before_it() -> None:
    sink = SlowWriter()
    sink.tick.set()
    with pytest.raises(orjson.JSONDecodeError):
        serve_sink(sink, lines({"records": [{"id": 1}]}, b"{not json\n", {"records": [{"id": 2}]}))
    assert [r["id"] for r in sink.records] == [1]
