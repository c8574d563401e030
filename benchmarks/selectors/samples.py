"""A run's stored comparison sample (``services/samples.py`` takes it at run end)."""

from __future__ import annotations

from benchmarks.models import Run, RunSample


def run_sample_stored(*, run: Run) -> RunSample | None:
    return RunSample.objects.filter(run=run).first()
