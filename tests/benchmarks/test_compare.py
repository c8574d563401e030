"""The comparison page, its saved form, exports and paired A/B verdict, on runs ended like real ones."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.urls import reverse

from benchmarks import bridge
from benchmarks.models import Comparison, Endpoint, Run, RunSample
from benchmarks.presenters.exports import plotly_bundle
from benchmarks.services.ab_tests import plan_ab_set
from benchmarks.services.samples import run_sample_get
from runner import PAIRED_KEYS
from tests.benchmarks.compare_runs import finished_run
from tests.benchmarks.factories import make_endpoint


def cell(page: str, path: str, column: int) -> str:
    """The HTML of one table cell: the row ``path`` of the first section, column ``column`` (0 = baseline)."""
    row = re.search(rf'<tr data-path="{re.escape(path)}">(.*?)</tr>', page, re.S)
    assert row, f"no row {path}"
    return re.findall(r'<td class="cell.*?</td>', row.group(1), re.S)[column]


def page_for(client, *runs: Run) -> str:
    response = client.get(reverse("compare"), {"runs": ",".join(str(r.pk) for r in runs)})
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


@pytest.fixture
def pair(cast):
    """Baseline, then a run 50% slower to first token and 30% faster per token."""
    base = finished_run(cast.plan, seed=1, variant={"quantization": "bf16"})
    slow = finished_run(cast.plan, seed=2, ttft_ms=150, tokens_per_s=65, variant={"quantization": "int4"})
    return base, slow


def test_delta_direction_follows_each_metric(cast, client_for, pair):
    page = page_for(client_for(cast.alice), *pair)
    ttft = cell(page, "ttft_ms.p50", 1)
    assert 'data-verdict="worse"' in ttft and "worse" in ttft and "+" in ttft  # higher TTFT is worse
    tps = cell(page, "tokens_per_s.p50", 1)
    assert 'data-verdict="better"' in tps  # higher tokens/s is better
    assert 'data-verdict="baseline"' in cell(page, "ttft_ms.p50", 0)
    assert 'data-verdict="same"' in cell(page, "success_rate", 1)
    # variant tags head the columns, the first run is the baseline
    head = page.split("<tbody")[0]
    assert "quantization=bf16" in head and "quantization=int4" in head and "baseline" in head


def test_difference_inside_noise_says_so_and_names_the_test(cast, client_for):
    a = finished_run(cast.plan, seed=11, variant={"tp": "2"})
    b = finished_run(cast.plan, seed=12, variant={"tp": "4"})  # same distribution, other requests
    page = page_for(client_for(cast.alice), a, b)
    p50 = cell(page, "ttft_ms.p50", 1)
    assert "within noise (95% bootstrap CI)" in p50 and " noise" in p50.split('"')[1]
    assert "Mann–Whitney U" in cell(page, "ttft_ms.max", 1)
    assert "bootstrap confidence interval" in page and "Mann–Whitney U test" in page


def test_real_difference_is_not_called_noise(cast, client_for, pair):
    page = page_for(client_for(cast.alice), *pair)
    assert "within noise" not in cell(page, "ttft_ms.p50", 1)
    assert "outside run-to-run noise" in cell(page, "ttft_ms.p50", 1)  # the tooltip names the CI


def test_accuracy_success_rate_and_buckets_are_shown(cast, client_for):
    a = finished_run(cast.plan, seed=1, accuracy=0.9)
    b = finished_run(cast.plan, seed=2, accuracy=0.6)
    page = page_for(client_for(cast.alice), a, b)
    assert "90.00%" in cell(page, "accuracy", 0)
    assert 'data-verdict="worse"' in cell(page, "accuracy", 1)
    assert '<tr data-path="success_rate">' in page
    for bucket in ("0–1k", "1k–4k", "4k+"):
        assert f'data-section="{bucket}"' in page
    for chart in ("ttft_cdf", "tps_dist", "ttft_time", "qpm_time", "bucket_ttft_ms"):
        assert f'id="chart-{chart}"' in page


def test_charts_overlay_one_trace_per_run_named_by_tags(cast, pair):
    from benchmarks.presenters.compare import comparison_build

    built = comparison_build(runs=list(pair))
    cdf = built["figures"]["ttft_cdf"]["data"]
    assert [t["name"] for t in cdf] == [
        f"#{pair[0].pk} quantization=bf16",
        f"#{pair[1].pk} quantization=int4",
    ]
    assert cdf[0]["line"]["color"] != cdf[1]["line"]["color"]
    assert len(built["figures"]["bucket_ttft_ms"]["data"]) == 2


def test_sweep_runs_get_a_throughput_latency_chart(cast):
    from benchmarks.presenters.compare import comparison_build

    runs = [finished_run(cast.plan, seed=s) for s in (1, 2)]
    for run in runs:
        run.summary["sweep"] = [
            {
                "level": i,
                "throughput": {"output_tokens_per_s": 100.0 * (i + 1)},
                "ttft_ms": {"p50": 50.0 + 10 * i},
            }
            for i in range(3)
        ]
        run.save()
    sweep = comparison_build(runs=runs)["figures"]["sweep"]["data"]
    assert len(sweep) == 2 and list(sweep[0]["y"]) == [50.0, 60.0, 70.0]


def test_csv_export_has_values_deltas_and_verdicts(cast, client_for, pair):
    client = client_for(cast.alice)
    response = client.get(reverse("compare_export", args=["csv"]), {"runs": f"{pair[0].pk},{pair[1].pk}"})
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    label = f"#{pair[1].pk} quantization=int4"
    ttft = next(r for r in rows if r["section"] == "Overall" and r["metric"] == "ttft_ms.p50")
    assert ttft[f"{label} verdict"] == "worse" and float(ttft[f"{label} delta %"]) > 30
    assert ttft[f"{label} noise"] == "outside noise" and ttft[f"{label} test"] == "bootstrap-ci"
    assert {r["section"] for r in rows} >= {"Overall", "Input tokens 0–1k"}


def test_html_report_is_self_contained(cast, client_for, pair):
    client = client_for(cast.alice)
    html = client.get(
        reverse("compare_export", args=["html"]), {"runs": f"{pair[0].pk},{pair[1].pk}"}
    ).content
    html = html.decode()
    bundle = plotly_bundle()
    assert bundle in html  # plotly.js inlined from the installed package
    rest = html.replace(bundle, "")
    assert 'id="compare-table"' in rest and "TTFT p50" in rest and 'id="chart-ttft_cdf"' in rest
    assert "Plotly.newPlot" in rest
    assert not re.search(r"https?://", rest), re.search(r".{80}https?://.{80}", rest)
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", rest)


def test_single_run_exports(cast, client_for, pair):
    client = client_for(cast.alice)
    html = client.get(reverse("run_export", args=[pair[0].pk, "html"])).content.decode()
    assert plotly_bundle() in html and 'id="compare-table"' in html
    rows = list(
        csv.DictReader(
            io.StringIO(client.get(reverse("run_export", args=[pair[0].pk, "csv"])).content.decode())
        )
    )
    assert any(r["metric"] == "ttft_ms.p99" for r in rows)
    assert client_for(cast.carol).get(reverse("run_export", args=[pair[0].pk, "csv"])).status_code == 404


def test_saved_comparison_is_shared_with_the_team_only(cast, client_for, pair):
    alice = client_for(cast.alice)
    response = alice.post(
        reverse("comparison_save"),
        {"runs": f"{pair[0].pk},{pair[1].pk}", "title": "INT4 vs BF16", "notes": "p99 matters"},
    )
    saved = Comparison.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "comparison_detail", args=[saved.pk]
    )
    assert saved.run_ids == [pair[0].pk, pair[1].pk] and saved.team == cast.team_a
    bob_page = client_for(cast.bob).get(reverse("comparison_detail", args=[saved.pk])).content.decode()
    assert "INT4 vs BF16" in bob_page and "p99 matters" in bob_page and 'id="compare-table"' in bob_page
    assert client_for(cast.carol).get(reverse("comparison_detail", args=[saved.pk])).status_code == 404
    assert client_for(cast.carol).get(reverse("comparison_export", args=[saved.pk, "csv"])).status_code == 404
    vera = client_for(cast.vera)
    assert (
        'id="save-comparison"' not in vera.get(reverse("comparison_detail", args=[saved.pk])).content.decode()
    )
    assert vera.post(reverse("comparison_edit", args=[saved.pk]), {"title": "x"}).status_code == 403
    assert "INT4 vs BF16" in client_for(cast.bob).get(reverse("comparison_list")).content.decode()


def test_foreign_or_unfit_selections(cast, client_for, pair):
    carol = client_for(cast.carol)
    assert carol.get(reverse("compare"), {"runs": f"{pair[0].pk},{pair[1].pk}"}).status_code == 404
    alice = client_for(cast.alice)
    one = alice.get(reverse("compare"), {"runs": str(pair[0].pk)})
    assert one.status_code == 400 and "at least two runs" in one.content.decode()
    queued = Run.objects.create(team=cast.team_a, plan=cast.plan, plan_name="p", endpoint_name="e")
    response = alice.get(reverse("compare"), {"runs": f"{pair[0].pk},{queued.pk}"})
    assert response.status_code == 400 and f"#{queued.pk}" in response.content.decode()


def test_runs_list_offers_the_multi_select(cast, client_for, pair):
    page = client_for(cast.alice).get(reverse("run_list")).content.decode()
    assert 'id="compare-form"' in page
    for run in pair:
        assert f'name="runs" value="{run.pk}" form="compare-form"' in page


def test_sample_is_bounded_and_taken_at_run_end(cast, monkeypatch):
    monkeypatch.setattr(RunSample, "SIZE", 50)
    run = finished_run(cast.plan, n=300, seed=3)
    sample = RunSample.objects.get(run=run)
    assert sample.population == 300 and len(bytes(sample.ttft_ms)) == 50 * 8


def test_runs_ended_before_samples_are_compared_from_their_records_and_the_get_writes_nothing(
    cast, client_for, pair
):
    RunSample.objects.filter(run=pair[0]).delete()
    page_for(client_for(cast.alice), *pair)
    assert not RunSample.objects.filter(run=pair[0]).exists()
    assert run_sample_get(run=pair[0]).population == 300


def test_run_samples_keep_one_column_per_paired_metric():
    assert RunSample.METRICS == PAIRED_KEYS
    for key in PAIRED_KEYS:
        assert RunSample._meta.get_field(key).get_internal_type() == "BinaryField"


def test_paired_ab_run_shows_each_variant_and_the_paired_verdict(cast, client_for):
    run = finished_run(cast.plan, seed=5, variants=2)  # variant B: 10% slower on every prompt
    sample = RunSample.objects.get(run=run)
    assert (
        len(sample.variants) == 2
        and sample.variants[1]["ttft_ms"]["p50"] > sample.variants[0]["ttft_ms"]["p50"]
    )
    page = page_for(client_for(cast.alice), run)
    assert "model-a" in page and "model-b" in page
    paired = page.split('id="paired-table"')[1]
    ttft = re.search(r"<tr><td>#\d+</td><td>TTFT \(ms\).*?</tr>", paired, re.S).group(0)
    assert "B worse" in ttft and "Wilcoxon signed-rank" in ttft
    assert 'data-verdict="worse"' in cell(page, "ttft_ms.p50", 1)


def test_plan_ab_targets_become_run_variants(cast, client_for):
    other = make_endpoint(cast.team_a, name="int4", base_url="http://127.0.0.1:9/int4")
    client = client_for(cast.alice)
    response = client.post(
        reverse("plan_ab", args=[cast.plan.pk]), {"mode": "interleaved", "variant_b": other.pk}
    )
    assert response.status_code == 302
    spec = bridge.run_spec(cast.plan)
    assert [v.base_url for v in spec.variants] == [cast.endpoint.base_url, other.base_url]
    assert spec.ab_mode == "interleaved" and all(v.api_key == "" for v in spec.variants)
    run = Run.objects.create(
        team=cast.team_a, plan=cast.plan, plan_name="p", endpoint_name="e", spec=spec.to_dict()
    )
    shard = bridge.shard_spec(run, index=0, count=1, api_key="key-a")
    assert [v.api_key for v in shard.variants] == ["key-a", other.reveal_api_key()]
    assert "int4" in client.get(reverse("plan_detail", args=[cast.plan.pk])).content.decode()


def test_plan_ab_form_refuses_gaps_and_foreign_endpoints(cast, client_for):
    client = client_for(cast.alice)
    foreign = Endpoint.objects.filter(team=cast.team_b).first()
    response = client.post(
        reverse("plan_ab", args=[cast.plan.pk]), {"mode": "simultaneous", "variant_b": foreign.pk}
    )
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    mine = make_endpoint(cast.team_a, name="b")
    response = client.post(
        reverse("plan_ab", args=[cast.plan.pk]), {"mode": "simultaneous", "variant_c": mine.pk}
    )
    assert response.status_code == 400 and "in order" in response.content.decode()
    assert client_for(cast.vera).get(reverse("plan_ab", args=[cast.plan.pk])).status_code == 403
    plan_ab_set(plan=cast.plan, endpoints=[], mode="simultaneous")
    assert bridge.run_spec(cast.plan).variants == []
