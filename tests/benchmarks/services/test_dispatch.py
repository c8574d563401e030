"""Embedded mode: housekeeping without Celery beat, and aggregators that never take a shard's slot."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from benchmarks.models import RequestRecord, Run, Shard
from benchmarks.services import dispatch
from tests.benchmarks.factories import make_cast

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_restart_ends_the_runs_it_interrupted_as_partial(settings, monkeypatch):
    settings.EMBEDDED_WORKER = True
    long_ago = timezone.now() - timedelta(minutes=10)
    cast = make_cast()
    run = Run.objects.create(
        team=cast.team_a, plan=cast.plan, endpoint=cast.endpoint, status=Run.Status.RUNNING,
        spec={}, shard_count=1, started_at=long_ago, supervisor_token="gone", supervisor_heartbeat_at=long_ago,
    )  # fmt: skip
    Shard.objects.create(
        run=run, index=0, status=Shard.Status.RUNNING, heartbeat_at=long_ago, started_at=long_ago
    )
    RequestRecord.objects.create(
        run=run, request_id="0-0", prompt_id="p", outcome="success", ttft_ms=50.0, e2e_ms=90.0,
        data={"request_id": "0-0", "prompt_id": "p", "outcome": "success", "ttft_ms": 50.0, "e2e_ms": 90.0},
    )  # fmt: skip
    pool_used: list[str] = []
    real_pool = dispatch._embedded_pool

    def watched_pool():  # aggregators must not take a slot of the shards' pool
        pool_used.append("pool")
        return real_pool()

    monkeypatch.setattr(dispatch, "_embedded_pool", watched_pool)
    monkeypatch.setattr(dispatch, "_housekeeping", None)
    assert dispatch.housekeeping_start(every_s=0.2) is True
    try:
        assert dispatch.housekeeping_start(every_s=0.2) is False  # once per process
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if not run.is_active:
                break
            time.sleep(0.2)
    finally:
        dispatch.housekeeping_stop()
    assert run.status == Run.Status.PARTIAL and "dead" in run.reason, (run.status, run.reason)
    assert pool_used == []
    connections.close_all()
