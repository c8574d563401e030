"""The runs list: every run reachable page by page; a tag filter matches key=value exactly."""

from __future__ import annotations

from django.urls import reverse

from benchmarks.models import Run
from tests.benchmarks.compare_runs import finished_run


def test_the_runs_list_pages_instead_of_stopping(cast, client_for, settings, monkeypatch):
    from benchmarks.views import runs as runs_view

    monkeypatch.setattr(runs_view, "RUNS_PER_PAGE", 4)
    for seed in range(9):
        finished_run(cast.plan, seed=seed)
    client = client_for(cast.alice)
    first = client.get(reverse("run_list")).content.decode()
    assert "page 1 of 3 (10 runs)" in first and "older →" in first
    last = client.get(reverse("run_list"), {"page": 3}).content.decode()
    assert "page 3 of 3" in last and "← newer" in last and "older →" not in last


def test_a_key_value_tag_matches_that_tag_exactly(cast, client_for):
    int4 = finished_run(cast.plan, seed=1)
    Run.objects.filter(pk=int4.pk).update(variant={"quantization": "int4"}, variant_text="quantization=int4")
    int48 = finished_run(cast.plan, seed=2)
    Run.objects.filter(pk=int48.pk).update(
        variant={"quantization": "int48"}, variant_text="quantization=int48"
    )
    client = client_for(cast.alice)
    exact = client.get(reverse("run_list"), {"tag": "quantization=INT4"}).content.decode()
    assert f"/runs/{int4.pk}/" in exact and f"/runs/{int48.pk}/" not in exact
    loose = client.get(reverse("run_list"), {"tag": "int4"}).content.decode()
    assert f"/runs/{int4.pk}/" in loose and f"/runs/{int48.pk}/" in loose
