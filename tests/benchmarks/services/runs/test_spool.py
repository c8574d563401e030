"""The local spool: records a writer could not store for lack of a database wait on disk and are
loaded when it returns (by the writer, finalize or the reaper); the reaper does not take an outage's
silence for dead shards. The real outage, through a proxy, is in tests/benchmarks/test_faults.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from benchmarks.live.bus import get_bus
from benchmarks.models import RequestRecord, Run, Shard
from benchmarks.services.runs import outage, reap, spool
from benchmarks.services.runs.finalize import run_finalize
from benchmarks.services.runs.shard import ShardSink

pytestmark = pytest.mark.django_db(transaction=True)


def _records(prefix: str, n: int, shard: int = 0) -> list[dict]:
    return [
        {
            "request_id": f"{prefix}{i}",
            "prompt_id": "p",
            "outcome": "success",
            "ttft_ms": 40.0,
            "shard": shard,
        }
        for i in range(n)
    ]


@pytest.fixture
def spool_dir(tmp_path, settings):
    settings.SHARD_SPOOL_DIR = tmp_path / "spool"
    return settings.SHARD_SPOOL_DIR


@pytest.fixture
def no_outage(monkeypatch):
    """Start and end each test with no outage remembered (this process's or Redis's)."""
    monkeypatch.setattr(outage, "_last_failure", -1e18)
    get_bus().redis.delete(outage.KEY)
    yield
    get_bus().redis.delete(outage.KEY)


@pytest.fixture
def database_away(monkeypatch):
    """The failures these tests raise stand for an unreachable database (the real one stays up)."""
    from benchmarks.services.runs import shard as shard_module

    monkeypatch.setattr(shard_module, "transient", lambda exc: True)


@pytest.fixture
def running(cast):
    run = cast.run
    run.records.all().delete()
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING, summary={})
    shard = run.shards.get()
    Shard.objects.filter(pk=shard.pk).update(status=Shard.Status.RUNNING, records_count=0)
    return run, shard


def test_a_writer_spools_while_the_database_is_away_and_loads_it_when_it_returns(
    running, spool_dir, no_outage, database_away, monkeypatch
):
    run, shard = running
    sink = ShardSink(run_id=run.pk, shard_id=shard.pk, shard_index=0)
    real_bulk = RequestRecord.objects.bulk_create
    down = {"on": True}

    def bulk_create(*args, **kw):
        if down["on"]:
            raise OperationalError("connection refused")
        return real_bulk(*args, **kw)

    monkeypatch.setattr(RequestRecord.objects, "bulk_create", bulk_create)
    sink.on_records(_records("a", 3))
    sink.on_records(_records("b", 2))
    assert RequestRecord.objects.filter(run=run).count() == 0
    path = spool.spool_path(run_id=run.pk, shard_index=0)
    assert len(path.read_bytes().splitlines()) == 5 and sink.spooled == 5
    assert outage.database_recently_unreachable()

    down["on"] = False
    sink.on_records(_records("c", 4))  # the spool goes in first, then this batch
    stored = set(RequestRecord.objects.filter(run=run).values_list("request_id", flat=True))
    assert stored == {"a0", "a1", "a2", "b0", "b1", "c0", "c1", "c2", "c3"}
    assert not path.exists()
    shard.refresh_from_db()
    assert shard.records_count == 9


def test_the_shards_end_spools_what_the_engine_kept_when_the_database_is_still_away(
    running, spool_dir, no_outage, database_away, monkeypatch
):
    from runner import RequestRecord as EngineRecord

    run, shard = running
    sink = ShardSink(run_id=run.pk, shard_id=shard.pk, shard_index=0)
    sink.on_records(_records("r", 2))  # two reached the database before it went away
    kept = [EngineRecord.from_dict(r) for r in _records("r", 5)]

    def refused(*args, **kw):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(RequestRecord.objects, "filter", refused)
    assert sink.insert_missing(kept) == 5  # all of them: it cannot tell which are stored
    monkeypatch.undo()
    # the worker ended meanwhile: finalize loads the spool, skipping the two already stored
    Shard.objects.filter(pk=shard.pk).update(status=Shard.Status.FINISHED)
    run_finalize(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED, run.reason
    assert run.summary["requests"]["total"] == 5
    assert sorted(RequestRecord.objects.filter(run=run).values_list("request_id", flat=True)) == [
        f"r{i}" for i in range(5)
    ]
    assert Shard.objects.get(pk=shard.pk).records_count == 5
    assert not spool.spool_dir(run.pk).exists()


def test_the_reaper_loads_spools_and_a_torn_line_costs_only_itself(running, spool_dir, no_outage):
    run, _ = running
    spool.spool_append(run_id=run.pk, shard_index=0, records=_records("x", 3))
    spool.spool_append(run_id=run.pk, shard_index=1, records=_records("y", 2, shard=1))
    with open(spool.spool_path(run_id=run.pk, shard_index=1), "ab") as f:
        f.write(b'{"request_id": "torn", "outc')  # a writer killed mid-line
    spool.spool_append(run_id=run.pk, shard_index=1, records=_records("z", 1, shard=1))  # after the tear
    assert spool.spool_runs() == [run.pk]
    assert reap.spools_load() == 6
    assert spool.spool_runs() == []
    assert dict(
        RequestRecord.objects.filter(run=run).values_list("request_id", "shard_index").order_by()
    ) == {"x0": 0, "x1": 0, "x2": 0, "y0": 1, "y1": 1, "z0": 1}
    assert reap.spools_load() == 0  # loading again finds nothing


def test_no_shard_is_reaped_while_the_database_was_just_away(running, spool_dir, no_outage, settings):
    _run, shard = running
    settings.SHARD_HEARTBEAT_TIMEOUT_S = 5
    Shard.objects.filter(pk=shard.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=1))
    outage.database_unreachable()  # a heartbeat (here or in another process) just failed
    assert reap.runs_reap_stale() == 0
    assert Shard.objects.get(pk=shard.pk).status == Shard.Status.RUNNING
    outage._last_failure = -1e18  # this process forgets, but Redis still remembers for 5 s
    reap.runs_reap_stale()
    assert Shard.objects.get(pk=shard.pk).status == Shard.Status.RUNNING
    get_bus().redis.delete(outage.KEY)  # the grace is over
    reap.runs_reap_stale()
    assert Shard.objects.get(pk=shard.pk).status == Shard.Status.DEAD


def test_the_shards_end_retries_an_unreachable_database_then_gives_up_plainly(no_outage, caplog):
    from benchmarks.services.runs.shard import until_database

    calls = []

    def step():
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("connection refused")

    assert until_database(step, what="shard 1 end", patience_s=10) is True
    assert len(calls) == 3 and "shard 1 end: database unreachable" in caplog.text

    def never():
        raise OperationalError("connection refused")

    assert until_database(never, what="shard 2 end", patience_s=0) is False
    assert "shard 2 end: database still unreachable (connection refused); giving up" in caplog.text
    assert outage.database_recently_unreachable()


def test_a_big_spool_loads_in_bounded_batches(running, spool_dir, no_outage, monkeypatch):
    """A spool is read line by line and inserted ``INSERT_BATCH`` rows at a time: never held whole."""
    run, _ = running
    monkeypatch.setattr(spool, "INSERT_BATCH", 50)
    spool.spool_append(run_id=run.pk, shard_index=0, records=_records("b", 230))
    sizes: list[int] = []
    insert = spool._insert

    def spy(rows):
        sizes.append(len(rows))
        return insert(rows)

    monkeypatch.setattr(spool, "_insert", spy)
    assert spool.spool_load(run_id=run.pk) == 230
    assert max(sizes) <= 50 and sum(sizes) == 230
    assert RequestRecord.objects.filter(run=run).count() == 230
    assert run.shards.get().records_count == 230
