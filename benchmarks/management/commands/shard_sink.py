"""``manage.py shard_sink RUN SHARD INDEX``: a load shard's writer process.

The shard's engine streams its records and live deltas to this process's stdin as JSON lines
(``runner.blocking.PipeSink``); it inserts the records into Postgres and publishes the deltas for
the run's aggregator, so none of that Python work competes with the measuring loop for the GIL.
Started and ended by ``benchmarks.services.runs.shard.shard_execute``; not for use by hand.
"""

from __future__ import annotations

import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from benchmarks.services.runs.shard import shard_sink_serve


class Command(BaseCommand):
    help = "Write one load shard's records and live deltas, read as JSON lines from stdin (internal)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run_id", type=int)
        parser.add_argument("shard_id", type=int)
        parser.add_argument("shard_index", type=int)

    def handle(self, *args: object, **options: int) -> None:
        if settings.SHARD_WRITER_CPUS and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, cpu_list(settings.SHARD_WRITER_CPUS))
        shard_sink_serve(
            run_id=options["run_id"],
            shard_id=options["shard_id"],
            shard_index=options["shard_index"],
            stream=sys.stdin.buffer,
        )


def cpu_list(text: str) -> set[int]:
    """``"1"``, ``"2-3,6"`` → the CPU numbers (the kernel's cpulist format)."""
    cpus: set[int] = set()
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            lo, _, hi = part.partition("-")
            cpus.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise CommandError(f"SHARD_WRITER_CPUS={text!r} is not a CPU list such as 1 or 2-3,6") from None
    return cpus
