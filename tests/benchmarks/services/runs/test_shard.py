"""A load shard streams its records and deltas to a writer process; nothing measured is lost."""

from __future__ import annotations

import io
import json
import sys

import pytest
from django.utils import timezone

from benchmarks import bridge
from benchmarks.live.bus import get_bus
from benchmarks.models import RequestRecord, Run, Shard
from benchmarks.services.runs import shard as shard_service
from tests.benchmarks.factories import make_cast

pytestmark = pytest.mark.django_db(transaction=True)


def _running_shard(cast, simulator, max_requests: int = 12) -> Shard:
    cast.endpoint.base_url = simulator.base_url
    cast.endpoint.save()
    cast.plan.max_requests, cast.plan.duration_s = max_requests, None
    cast.plan.save()
    spec = bridge.run_spec(cast.plan).to_dict()
    run = Run.objects.create(
        team=cast.plan.team,
        plan=cast.plan,
        endpoint=cast.endpoint,
        plan_name=cast.plan.name,
        endpoint_name=cast.endpoint.name,
        status=Run.Status.RUNNING,
        spec=spec,
        shard_count=1,
        started_at=timezone.now(),
    )
    return Shard.objects.create(run=run, index=0)


def test_the_writer_process_stores_records_and_publishes_deltas():
    cast = make_cast()
    run = cast.run
    shard = Shard.objects.create(run=run, index=3, status=Shard.Status.RUNNING)
    lines = [
        {
            "records": [
                {"request_id": f"w{i}", "prompt_id": "p", "outcome": "success", "ttft_ms": 40.0}
                for i in range(5)
            ]
        },
        {"tick": {"shard": 3, "seq": 1, "final": False, "windows": {}, "gauges": {"0": 2}}},
    ]
    stream = io.BytesIO(b"".join(json.dumps(x).encode() + b"\n" for x in lines))
    bus = get_bus()
    bus.drain(run.pk, timeout=0.01)
    handed = shard_service.shard_sink_serve(run_id=run.pk, shard_id=shard.pk, shard_index=3, stream=stream)
    assert handed == 5
    assert RequestRecord.objects.filter(run=run, shard_index=3).count() == 5
    shard.refresh_from_db()
    assert shard.records_count == 5
    published = bus.drain(run.pk, timeout=1.0)
    assert [m["delta"]["seq"] for m in published] == [1] and published[0]["shard"] == 3


def test_a_dying_writer_process_loses_no_measured_record(simulator, settings, monkeypatch):
    cast = make_cast()
    shard = _running_shard(cast, simulator)
    Shard.objects.filter(pk=shard.pk).update(status=Shard.Status.QUEUED)
    settings.SHARD_SINK_PROCESS = True
    monkeypatch.setattr(
        shard_service, "shard_sink_command", lambda **_: [sys.executable, "-c", "import sys; sys.exit(3)"]
    )
    shard_service.shard_execute(shard_id=shard.pk, hostname="w-test")
    shard.refresh_from_db()
    assert shard.status == Shard.Status.FINISHED, shard.error
    stored = RequestRecord.objects.filter(run_id=shard.run_id)
    assert stored.count() == 12 and all(r.outcome == "success" for r in stored)


def test_the_writer_process_writes_every_record_of_a_shard(simulator, settings, monkeypatch):
    cast = make_cast()
    shard = _running_shard(cast, simulator, max_requests=20)
    Shard.objects.filter(pk=shard.pk).update(status=Shard.Status.QUEUED)
    settings.SHARD_SINK_PROCESS = True
    filled_in: list[int] = []
    original = shard_service.ShardSink.insert_missing

    def spy(self, records):
        filled_in.append(original(self, records))
        return filled_in[-1]

    monkeypatch.setattr(shard_service.ShardSink, "insert_missing", spy)
    shard_service.shard_execute(shard_id=shard.pk, hostname="w-test")
    assert filled_in == [0]  # the writer process stored them all; the shard had nothing to add
    shard.refresh_from_db()
    assert shard.status == Shard.Status.FINISHED, shard.error
    assert RequestRecord.objects.filter(run_id=shard.run_id).count() == 20 == shard.records_count
