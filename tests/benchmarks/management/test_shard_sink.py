"""The shard writer process can be kept off the measuring loop's core (``SHARD_WRITER_CPUS``)."""

from __future__ import annotations

import io

import pytest
from django.core.management.base import CommandError

from benchmarks.management.commands import shard_sink


def test_the_cpu_list_reads_the_kernels_format() -> None:
    assert shard_sink.cpu_list("1") == {1}
    assert shard_sink.cpu_list("2-3, 6") == {2, 3, 6}
    with pytest.raises(CommandError, match="SHARD_WRITER_CPUS='two'"):
        shard_sink.cpu_list("two")


@pytest.mark.parametrize(("cpus", "pinned"), [("0", {0}), ("", None)])
def test_the_writer_pins_itself_only_when_told(settings, monkeypatch, cpus, pinned) -> None:
    settings.SHARD_WRITER_CPUS = cpus
    calls: list[set[int]] = []
    monkeypatch.setattr(shard_sink.os, "sched_setaffinity", lambda pid, cpus: calls.append(set(cpus)))
    served: list[int] = []
    monkeypatch.setattr(shard_sink, "shard_sink_serve", lambda **kw: served.append(kw["run_id"]))
    monkeypatch.setattr(shard_sink.sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    shard_sink.Command().handle(run_id=7, shard_id=8, shard_index=0)
    assert served == [7]
    assert calls == ([pinned] if pinned else [])
