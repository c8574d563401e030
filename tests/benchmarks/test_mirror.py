"""Bypass testing in the dashboard: mirror sessions on a real Celery worker, captured traffic uploaded
as timed datasets, and replay plans that keep the recorded arrivals."""

from __future__ import annotations

import contextlib
import html
import json
import re
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.test import Client
from django.urls import reverse

from benchmarks import bridge
from benchmarks.models import Dataset, DatasetItem, LoadProfile, RequestRecord, Run, Shard
from benchmarks.services.captures import CaptureError, capture_dataset_create, capture_parse
from benchmarks.services.mirrors import mirror_start, mirror_stop
from runner import SimulatorProcess
from tests.benchmarks.factories import API_KEY, make_cast, make_endpoint, make_plan, make_profile
from tests.benchmarks.workers import free_port, wait_for, workers

CALLER_KEY = "sk-caller-PRIVATE-77aa"  # the caller's own credential: never stored, never shown


@pytest.fixture(scope="module")
def slow_shadow() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(ttft_ms=150, itl_ms=5, output_tokens=16) as sim:
        yield sim


@pytest.fixture
def cast_tx(transactional_db):
    yield make_cast()
    connections.close_all()


def _chat(text: str) -> dict[str, Any]:
    return {
        "model": "llmperf-sim",
        "messages": [{"role": "user", "content": text}],
        "max_tokens": 16,
        "stream": True,
    }


def _listening(run: Run) -> str:
    run.refresh_from_db()
    return str((run.snapshot or {}).get("listening") or "")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_mirror_session_on_a_celery_worker_is_recorded_with_both_sides_and_a_verdict(
    cast_tx, simulator, slow_shadow
):
    shadow = make_endpoint(cast_tx.team_a, name="candidate", base_url=slow_shadow.base_url)
    port = free_port()
    with workers(("w1", "load,celery")) as (worker,):
        run = mirror_start(
            team=cast_tx.team_a,
            shadow=shadow,
            upstream=simulator.url,
            listen=f"127.0.0.1:{port}",
            capture_dataset=True,
            by=cast_tx.alice,
        )
        url = wait_for(lambda: _listening(run), 40, "the mirror to listen")
        headers = {"Authorization": f"Bearer {CALLER_KEY}"}
        for i in range(6):
            r = httpx.post(
                f"{url}/v1/chat/completions", json=_chat(f"question {i}"), headers=headers, timeout=30
            )
            assert r.status_code == 200 and b"[DONE]" in r.content
        wait_for(
            lambda: (_listening(run), run.snapshot.get("started") == run.snapshot.get("completed") == 6)[1],
            10,
            "live counters",
        )
        page = _page(cast_tx.alice, run)
        assert "mirror-stop" in page and "holds the listening socket" in page
        assert mirror_stop(run=run, by=cast_tx.alice)
        wait_for(lambda: not Run.objects.get(pk=run.pk).is_active, 40, "the session to end")
        assert not _port_open(port), "the worker still listens after the stop"
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED, (run.reason, worker.output())
    assert run.kind == Run.Kind.MIRROR and "Stopped by alice" in run.reason
    assert run.shards.get().status == Shard.Status.FINISHED
    sides = [RequestRecord.objects.filter(run=run, data__variant=v).count() for v in (0, 1)]
    assert sides == [6, 6]
    m = run.summary["mirror"]
    assert m["paired"]["pairs"] == 6 and m["shadow_counts"]["succeeded"] == 6
    assert m["verdict"]["latency"] == "slower"  # the shadow's TTFT is 100 ms longer
    prod, cand = run.summary["variants"]
    assert cand["ttft_ms"]["p50"] > prod["ttft_ms"]["p50"] + 50
    assert run.summary["requests"]["total"] == 6  # the run's own figures: the endpoint under test
    page = _page(cast_tx.alice, run)
    assert "Paired verdict" in page and "slower" in page
    compare = Client()
    compare.force_login(cast_tx.alice)
    columns = compare.get(reverse("compare"), {"runs": run.pk}).content.decode()
    assert "A: production" in columns and "B: llmperf-sim" in columns  # variants: the comparison reads both
    captured = Dataset.objects.get(pk=run.spec["capture_dataset_id"])
    items = list(DatasetItem.objects.filter(version__dataset=captured).order_by("index"))
    assert len(items) == 6 and all(i.arrival_s is not None for i in items) and items[0].recorded
    stored = json.dumps([[i.prompt, i.messages, i.params, i.recorded] for i in items]) + json.dumps(run.spec)
    stored += json.dumps(list(RequestRecord.objects.filter(run=run).values_list("data", flat=True)))
    for secret in (CALLER_KEY, API_KEY):
        assert secret not in stored and secret not in page


def _page(user, run: Run) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(reverse("run_detail", args=[run.pk]))
    assert response.status_code == 200
    return response.content.decode()


# --- captures and replays ----------------------------------------------------------------------------


def _capture_lines(n: int, gap_s: float = 0.2) -> bytes:
    lines = []
    for i in range(n):
        body = {**_chat(f"question {i}"), "temperature": round(0.1 * i, 1), "api_key": "sk-LEAK-in-body"}
        lines.append(
            {
                "format": "llmperf-capture/1",
                "id": f"r{i}",
                "t_s": i * gap_s,
                "ts": 1_700_000_000 + i * gap_s,
                "method": "POST",
                "path": "/v1/chat/completions",
                "headers": {"content-type": "application/json"},
                "body": body,
                "production": {
                    "outcome": "success",
                    "ttft_ms": 40.0,
                    "e2e_ms": 120.0,
                    "tokens_per_s": 100.0,
                    "answer_text": "yes",
                },
            }
        )
    return "\n".join(json.dumps(line) for line in lines).encode()


def test_an_uploaded_capture_keeps_timing_parameters_and_recorded_production(cast, client_for):
    client = client_for(cast.alice)
    upload = SimpleUploadedFile("capture.jsonl", _capture_lines(5))
    response = client.post(
        reverse("capture_upload"), {"name": "prod traffic", "file": upload, "privacy": "keep"}
    )
    assert response.status_code == 302
    dataset = Dataset.objects.get(name="prod traffic")
    items = list(DatasetItem.objects.filter(version__dataset=dataset).order_by("index"))
    assert [i.arrival_s for i in items] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    assert items[3].params["temperature"] == 0.3 and items[0].recorded["ttft_ms"] == 40.0
    assert "sk-LEAK" not in json.dumps([i.params for i in items])


def _ws_line(t_s: float, frames: list[dict[str, Any]], sent: int) -> dict[str, Any]:
    first = frames[0]["json"] if frames and "json" in frames[0] else None
    return {
        "format": "llmperf-capture/1",
        "t_s": t_s,
        "ts": 1_700_000_000 + t_s,
        "transport": "websocket",
        "method": "GET",
        "path": "/v1/ws",
        "headers": {},
        "frames": frames,
        "frames_sent": sent,
        "body": first,
        "production": {"outcome": "success", "status": 101, "ttft_ms": 21.0, "answer_text": "an answer"},
    }


def test_an_uploaded_capture_of_websocket_sessions_keeps_the_asks_and_counts_the_skipped(cast):
    ask = {"model": "m", "prompt": "what is a tram", "max_tokens": 9, "context": "my own words"}
    lines = [
        _ws_line(0.0, [{"t_ms": 0.0, "json": ask}], 1),
        _ws_line(0.5, [{"t_ms": 0.0, "json": ask}, {"t_ms": 3.0, "json": {"type": "cancel"}}], 2),
        _ws_line(0.7, [], 0),
        _ws_line(0.9, [{"t_ms": 0.0, "text": "hello"}], 1),
    ]
    data = "\n".join([*(json.dumps(line) for line in lines), _capture_lines(1).decode()])
    dataset = capture_dataset_create(
        team=cast.team_a, name="ws", data=data.encode(), filename="c.jsonl", fmt=None, privacy="hash", by=None
    )
    items = list(DatasetItem.objects.filter(version__dataset=dataset).order_by("index"))
    assert len(items) == 2  # the one replayable session and the HTTP request
    session = next(i for i in items if i.max_tokens == 9)
    assert session.recorded["ttft_ms"] == 21.0 and "answer_text" not in session.recorded
    assert "tram" not in json.dumps([session.prompt, session.params]) and "my own" not in json.dumps(
        session.params
    )
    note = capture_parse(data=data.encode(), fmt=None, privacy="hash").note  # what the upload page says
    assert "1 WebSocket sessions sent as their ask" in note
    assert "3 WebSocket sessions skipped: 1 asked without prompt or messages, 1 never asked" in note
    assert "1 sent more than an ask" in note


def test_privacy_drop_stores_no_prompt_text(cast):
    dataset = capture_dataset_create(
        team=cast.team_a,
        name="private",
        data=_capture_lines(3),
        filename="c.jsonl",
        fmt=None,
        privacy="drop",
        by=None,
    )
    items = DatasetItem.objects.filter(version__dataset=dataset)
    assert items.count() == 3
    assert not any("question" in (i.prompt or "") + json.dumps(i.messages) for i in items)
    assert all(i.recorded and "answer_text" not in i.recorded for i in items)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"timestamp": 1, "body": {"messages": []}}\nnot json at all\n', "line 2"),
        (b"<html>not a capture</html>", "line 1: neither a JSON object"),
        (b'{"timestamp": 1, "body": {"model": "x"}}\n', "neither messages nor prompt"),
        (b'{"timestamp": 1, "body": "{not json"}\n', "is text, not a JSON object"),
        (b"", "empty"),  # the form refuses it before parsing
        (
            b'{"timestamp": 1, "body": {"messages": []}}\n{"timestamp": 2, "m": '
            + b"[" * 5000
            + b"]" * 5000
            + b"}\n",
            "line 2: nested more than 64 levels deep",
        ),
    ],
    ids=["not-json", "html", "no-messages", "text-body", "empty", "deep"],
)
def test_a_bad_capture_says_why_and_saves_nothing(cast, client_for, data, message):
    client = client_for(cast.alice)
    upload = SimpleUploadedFile("bad.jsonl", data)
    response = client.post(reverse("capture_upload"), {"name": "bad", "file": upload, "privacy": "keep"})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Dataset.objects.filter(name="bad").exists()
    with pytest.raises(CaptureError):
        capture_dataset_create(
            team=cast.team_a, name="bad", data=data, filename="b", fmt=None, privacy="keep", by=None
        )


def test_a_replay_plan_at_x5_keeps_order_and_relative_arrivals(cast):
    gap = 0.5
    dataset = capture_dataset_create(
        team=cast.team_a,
        name="timed",
        data=_capture_lines(8, gap),
        filename="c.jsonl",
        fmt=None,
        privacy="keep",
        by=None,
    )
    profile = make_profile(cast.team_a, kind="replay", speed=5.0, replay=[])
    plan = make_plan(cast.team_a, endpoint=cast.endpoint)
    plan.dataset, plan.profile = dataset, profile
    plan.save()
    spec = bridge.run_spec(plan)
    entries = spec.profile.replay
    assert [int(e["prompt"]) for e in entries] == list(range(8))
    assert [e["t_s"] for e in entries] == pytest.approx([i * gap for i in range(8)])
    assert spec.profile.speed == 5.0
    assert spec.prompts[2].params["temperature"] == 0.2  # each request's own parameters


def test_a_replay_without_a_timed_dataset_says_so(cast):
    profile = make_profile(cast.team_a, kind="replay", speed=1.0, replay=[])
    plan = make_plan(cast.team_a, endpoint=cast.endpoint)
    plan.profile = profile
    plan.save()
    with pytest.raises(bridge.NoPrompts, match="timed dataset"):
        bridge.run_spec(plan)


def test_a_mirror_whose_production_is_down_is_refused_plainly(cast, client_for):
    client = client_for(cast.alice)
    down = f"http://127.0.0.1:{free_port()}"
    response = client.post(
        reverse("mirror_new"),
        {
            "shadow": cast.endpoint.pk,
            "upstream": down,
            "listen": "127.0.0.1:0",
            "sample": 1,
            "capture_prompts": "keep",
        },
    )
    assert response.status_code == 400 and "does not answer" in response.content.decode()
    assert not Run.objects.filter(kind=Run.Kind.MIRROR).exists()
    with pytest.raises(CommandError, match="does not answer"):
        call_command(
            "mirror", "--team", str(cast.team_a.pk), "--upstream", down, "--shadow", cast.endpoint.name
        )


def test_another_teams_endpoint_cannot_be_a_shadow(cast, client_for, simulator):
    other = make_endpoint(cast.team_b, name="theirs")
    response = client_for(cast.alice).post(
        reverse("mirror_new"),
        {
            "shadow": other.pk,
            "upstream": simulator.url,
            "listen": "127.0.0.1:0",
            "sample": 1,
            "capture_prompts": "keep",
        },
    )
    assert response.status_code == 400
    with pytest.raises(CommandError, match="no endpoint"):
        call_command(
            "mirror", "--team", str(cast.team_a.pk), "--upstream", simulator.url, "--shadow", "theirs"
        )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_capture_replayed_at_x5_on_a_worker_keeps_order_and_arrivals_and_compares(cast_tx, simulator):
    from benchmarks.services.runs.start import run_start

    gap, n, tolerance_s = 0.5, 10, 0.25  # 0.1 s apart at ×5; a busy machine may drift this far
    dataset = capture_dataset_create(
        team=cast_tx.team_a,
        name="timed",
        data=_capture_lines(n, gap),
        filename="c.jsonl",
        fmt=None,
        privacy="keep",
        by=None,
    )
    cast_tx.endpoint.base_url = simulator.base_url
    cast_tx.endpoint.save()
    plan = cast_tx.plan
    plan.dataset, plan.profile = dataset, make_profile(cast_tx.team_a, kind="replay", speed=5.0, replay=[])
    plan.duration_s, plan.shard_count = 30.0, 1
    plan.save()
    with workers(("w1", "load,celery")) as (worker,):
        run = run_start(plan=plan, by=cast_tx.alice)
        wait_for(lambda: not Run.objects.get(pk=run.pk).is_active, 60, "the replay to end")
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED, (run.reason, worker.output())
    rows = sorted(
        RequestRecord.objects.filter(run=run).values_list("data", flat=True), key=lambda d: d["scheduled_s"]
    )
    assert [int(d["prompt_id"]) for d in rows] == list(range(n))  # the recorded order
    sent = [d["scheduled_s"] + d["schedule_lag_ms"] / 1000 for d in rows]
    for i, t in enumerate(sent):
        assert t - sent[0] == pytest.approx(i * gap / 5, abs=tolerance_s), i
    replay = run.summary["replay"]
    assert replay["scheduled"] == n and replay["sent"] == n and replay["speed"] == 5.0
    assert replay["versus_recorded"]["pairs"] == n  # the capture's production rows, by prompt
    page = _page(cast_tx.alice, run)
    assert "replay-fidelity" in page and ("replay-kept-up" in page or "Did not keep up" in page)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_mirror_command_records_its_session_and_stops_on_sigterm(cast_tx, simulator, slow_shadow):
    import signal
    import subprocess
    import sys

    from tests.benchmarks.workers import ROOT, service_env

    make_endpoint(cast_tx.team_a, name="candidate", base_url=slow_shadow.base_url)
    port = free_port()
    argv = [sys.executable, "manage.py", "mirror", "--team", cast_tx.team_a.name, "--upstream", simulator.url]
    argv += ["--shadow", "candidate", "--listen", f"127.0.0.1:{port}", "--user", "alice"]
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=service_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_for(lambda: _port_open(port), 30, "the command's mirror to listen")
        for i in range(3):
            r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=_chat(f"q{i}"), timeout=30)
            assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = out.decode()
    assert proc.returncode == 0, text
    run = Run.objects.get(kind=Run.Kind.MIRROR)
    assert run.status == Run.Status.FINISHED and run.created_by == cast_tx.alice, run.reason
    assert "Shadow slower than production" in text and run.summary["mirror"]["paired"]["pairs"] == 3
    assert not _port_open(port)


def test_a_replay_profile_without_entries_has_a_page_and_a_plan_on_an_untimed_dataset_says_why(
    cast, client_for
):
    client = client_for(cast.alice)
    response = client.post(
        reverse("profile_create"), {"name": "as recorded x10", "kind": "replay", "speed": 10, "replay": ""}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    profile = LoadProfile.objects.get(name="as recorded x10")
    assert profile.spec["replay"] == [] and profile.spec["speed"] == 10
    assert client.get(reverse("profile_detail", args=[profile.pk])).status_code == 200
    cast.plan.profile = profile
    cast.plan.save()
    started = client.post(reverse("plan_start", args=[cast.plan.pk]), follow=True)
    assert started.status_code == 200 and "timed dataset" in started.content.decode()
    assert not Run.objects.filter(plan=cast.plan, kind=Run.Kind.LOAD).exclude(pk=cast.run.pk).exists()


def test_credentials_in_the_production_url_are_refused(cast, client_for, simulator):
    response = client_for(cast.alice).post(
        reverse("mirror_new"),
        {
            "shadow": cast.endpoint.pk,
            "upstream": simulator.url.replace("http://", "http://user:hunter2@"),
            "listen": "127.0.0.1:0",
            "sample": 1,
            "capture_prompts": "keep",
        },
    )
    assert response.status_code == 400 and "no credentials" in response.content.decode()


def test_the_pages_say_where_a_session_runs_and_viewers_cannot_start_one(cast, client_for):
    client = client_for(cast.alice)
    page = client.get(reverse("mirror_new")).content.decode()
    assert "holds the listening socket" in page and 'id="nav-mirror"' in page
    assert client.get(reverse("capture_upload")).status_code == 200
    assert "capture-upload" in client.get(reverse("dataset_list")).content.decode()
    viewer = Client()
    viewer.force_login(cast.vera)
    assert viewer.get(reverse("mirror_new")).status_code == 403
    assert viewer.post(reverse("mirror_stop", args=[cast.run.pk])).status_code == 403
    outsider = Client()
    outsider.force_login(cast.carol)
    assert outsider.post(reverse("mirror_stop", args=[cast.run.pk])).status_code == 404


def test_an_uploaded_public_trace_keeps_its_arrivals_and_conversations(cast):
    from pathlib import Path

    traces = Path(__file__).parents[1] / "runner/fixtures/traces"
    dataset = capture_dataset_create(
        team=cast.team_a,
        name="mooncake",
        data=(traces / "mooncake_conversation_first40.jsonl").read_bytes(),
        filename="m.jsonl",
        fmt=None,
        privacy="keep",
        by=None,
    )
    version = dataset.current_version()
    assert version.format == "mooncake" and version.item_count == 40
    arrivals = list(version.items.order_by("index").values_list("arrival_s", flat=True))
    assert arrivals[0] == 0.0 and arrivals == sorted(arrivals) and arrivals[-1] > 0
    plan = make_plan(cast.team_a, endpoint=cast.endpoint)
    plan.dataset, plan.profile = dataset, make_profile(cast.team_a, kind="replay", speed=2.0, replay=[])
    plan.save()
    assert len(bridge.run_spec(plan).profile.replay) == 40
    chats = capture_dataset_create(
        team=cast.team_a,
        name="bailian",
        data=(traces / "bailian_sample.jsonl").read_bytes(),
        filename="b.jsonl",
        fmt=None,
        privacy="keep",
        by=None,
    )
    plan.dataset = chats
    plan.save()
    sessions = [p.session for p in bridge.run_spec(plan).prompts if p.session]
    assert sessions and len(sessions) > len(set(sessions))  # follow-ups stay turns of their conversation


@pytest.mark.django_db(transaction=True)
def test_a_session_whose_port_is_taken_fails_with_the_reason(cast_tx, simulator):
    from benchmarks.services.mirrors import mirror_execute

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = mirror_start(
            team=cast_tx.team_a,
            shadow=cast_tx.endpoint,
            upstream=simulator.url,
            listen=f"127.0.0.1:{port}",
            by=cast_tx.alice,
            enqueue=False,
        )
        mirror_execute(run_id=run.pk, hostname="test")
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED and "could not listen" in run.reason
    assert API_KEY not in run.reason
    assert "could not listen" in _page(cast_tx.alice, run)


@pytest.mark.django_db(transaction=True)
def test_a_running_sessions_records_and_live_seconds_arrive_before_the_stop(cast_tx, simulator):
    """The live view draws while the session runs: both sides' records are stored and per-second
    points appear while the run is still running; at the stop nothing is stored twice."""
    import threading
    import time

    from benchmarks.models import RunSecond
    from benchmarks.services.mirrors import mirror_execute

    shadow = make_endpoint(cast_tx.team_a, name="candidate", base_url=simulator.base_url)
    run = mirror_start(
        team=cast_tx.team_a,
        shadow=shadow,
        upstream=simulator.url,
        listen=f"127.0.0.1:{free_port()}",
        by=cast_tx.alice,
        enqueue=False,
    )

    def hold() -> None:  # what the Celery task does, on a thread of its own here
        try:
            mirror_execute(run_id=run.pk, hostname="test")
        finally:
            connections.close_all()

    session = threading.Thread(target=hold)
    session.start()
    try:
        url = wait_for(lambda: _listening(run), 20, "the mirror to listen")
        for i in range(4):
            r = httpx.post(f"{url}/v1/chat/completions", json=_chat(f"live {i}"), timeout=30)
            assert r.status_code == 200
            time.sleep(0.4)

        def drawn() -> int:
            return sum(
                p["completed"] for p in RunSecond.objects.filter(run=run).values_list("point", flat=True)
            )

        wait_for(lambda: RequestRecord.objects.filter(run=run).count() == 8, 10, "records while running")
        wait_for(lambda: drawn() == 8, 10, "per-second points while running")
        live = Run.objects.get(pk=run.pk)
        assert live.status == Run.Status.RUNNING  # all of the above before any stop
        assert live.snapshot["started"] == 4 and live.snapshot["listening"] == url  # production's counters
        assert RunSecond.objects.filter(run=run).exists() and live.snapshot["ttft_p50"] is not None
    finally:
        mirror_stop(run=run, by=cast_tx.alice)
        session.join(60)
    assert not session.is_alive()
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED, run.reason
    assert RequestRecord.objects.filter(run=run).count() == 8  # stored as they came, not again
    assert run.shards.get().records_count == 8
    assert (
        sorted(RequestRecord.objects.filter(run=run).values_list("data__variant", flat=True))
        == [0] * 4 + [1] * 4
    )


# --- WebSocket sessions read in the session's own frame format --------------------------------------
OWN_FORMAT = {
    "kind_path": "event",
    "kind_map": {"delta": "answer", "end": "done"},
    "answer_path": "content",
    "finish_path": "reason",
}


def _form_post(shadow: Any, upstream: str, **extra: Any) -> dict[str, Any]:
    return {
        "shadow": shadow.pk,
        "upstream": upstream,
        "listen": "127.0.0.1:8089",
        "sample": 1,
        "capture_prompts": "keep",
        **extra,
    }


def test_the_mirror_form_takes_a_websocket_frame_format_and_refuses_junk(cast, client_for, simulator):
    client = client_for(cast.alice)
    for junk, message in (
        ("{oops", "Not valid JSON"),
        ('{"colour": "red"}', "unknown stream-format keys colour"),
        ('{"kind_path": "event", "kind_map": {"delta": "words"}}', "kind map values must be packet kinds"),
    ):
        response = client.post(
            reverse("mirror_new"), _form_post(cast.endpoint, simulator.url, ws_format=junk)
        )
        assert response.status_code == 400 and message.lower() in response.content.decode().lower(), junk
    assert not Run.objects.filter(kind=Run.Kind.MIRROR).exists()
    page = client.get(reverse("mirror_new")).content.decode()
    assert 'name="ws_format"' in page and "WebSocket frame format" in page
    response = client.post(
        reverse("mirror_new"), _form_post(cast.endpoint, simulator.url, ws_format=json.dumps(OWN_FORMAT))
    )
    assert response.status_code == 302
    run = Run.objects.get(kind=Run.Kind.MIRROR)
    assert run.spec["mirror"]["ws_format"] == OWN_FORMAT
    page = _page(cast.alice, run)  # shown on its page as JSON, not as a Python dict
    shown = re.search(r'<pre id="mirror-ws-format">(.*?)</pre>', page, re.S)
    assert shown is not None and json.loads(html.unescape(shown.group(1))) == OWN_FORMAT
    assert "&quot;kind_path&quot;: &quot;event&quot;" in shown.group(1) and "&#x27;" not in shown.group(1)
    config = bridge.mirror_config(run, api_key="")
    assert config.ws_format is not None and config.ws_format.kind_path == "event"
    assert config.ws_format.kind_map == OWN_FORMAT["kind_map"]
    blank = client.post(reverse("mirror_new"), _form_post(cast.endpoint, simulator.url, ws_format=""))
    assert blank.status_code == 302
    assert bridge.mirror_config(Run.objects.latest("pk"), api_key="").ws_format is None  # the simulator's


@contextlib.contextmanager
def own_format_ws_server() -> Iterator[str]:
    """A WebSocket endpoint speaking a format of its own: ``{"event": "delta", "content": …}`` frames,
    then ``{"event": "end", "reason": "stop"}``; on a thread, as production would be elsewhere."""
    import asyncio
    import threading

    from aiohttp import web

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        ask = json.loads((await ws.receive()).data)
        for word in str(ask.get("prompt", "")).split():
            await ws.send_str(json.dumps({"event": "delta", "content": word.upper() + " "}))
        await ws.send_str(json.dumps({"event": "end", "reason": "stop"}))
        await ws.close()
        return ws

    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_get("/v1/ws", handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    port = free_port()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


@pytest.mark.django_db(transaction=True)
def test_a_websocket_session_started_from_the_dashboard_is_read_in_its_frame_format(cast_tx):
    import asyncio
    import threading

    import aiohttp

    from benchmarks.services.mirrors import mirror_execute

    async def ask(url: str) -> list[str]:
        async with aiohttp.ClientSession() as s, s.ws_connect(url + "/v1/ws") as ws:
            await ws.send_str(json.dumps({"prompt": "trains run on time", "max_tokens": 8}))
            return [msg.data async for msg in ws]

    with own_format_ws_server() as origin:
        shadow = make_endpoint(cast_tx.team_a, name="candidate", base_url=origin + "/v1")
        run = mirror_start(
            team=cast_tx.team_a,
            shadow=shadow,
            upstream=origin,
            listen=f"127.0.0.1:{free_port()}",
            ws_format=OWN_FORMAT,
            by=cast_tx.alice,
            enqueue=False,
        )

        def hold() -> None:  # what the Celery task does, on a thread of its own here
            try:
                mirror_execute(run_id=run.pk, hostname="test")
            finally:
                connections.close_all()

        session = threading.Thread(target=hold)
        session.start()
        try:
            url = wait_for(lambda: _listening(run), 20, "the mirror to listen")
            frames = asyncio.run(ask(url))
            assert len(frames) == 5 and json.loads(frames[-1]) == {"event": "end", "reason": "stop"}
            wait_for(lambda: RequestRecord.objects.filter(run=run).count() == 2, 10, "both sides' records")
        finally:
            mirror_stop(run=run, by=cast_tx.alice)
            session.join(60)
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED, run.reason
    rows = sorted(
        RequestRecord.objects.filter(run=run).values_list("data", flat=True), key=lambda d: d["variant"]
    )
    for side in rows:  # production and the shadow, each read by the session's format
        assert side["outcome"] == "success", side
        assert side["answer_text"] == "TRAINS RUN ON TIME " and side["finish_reason"] == "stop"
        assert side["content_chunks"] == 4


def test_the_mirror_command_refuses_a_junk_websocket_frame_format(cast, simulator):
    with pytest.raises(CommandError, match="--ws-format: unknown stream-format keys colour"):
        call_command(
            "mirror",
            *("--team", str(cast.team_a.pk), "--upstream", simulator.url, "--shadow", cast.endpoint.name),
            *("--ws-format", '{"colour": 1}'),
        )
    assert not Run.objects.filter(kind=Run.Kind.MIRROR).exists()
