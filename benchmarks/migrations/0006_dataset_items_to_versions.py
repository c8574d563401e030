"""Each dataset's JSON ``items`` become its version 1 (DatasetItem rows); counts are made afresh.
Earlier runs get no version: items could have been edited in place since, so none is claimed."""

from django.db import migrations


def items_to_versions(apps, schema_editor):
    Dataset = apps.get_model("benchmarks", "Dataset")
    DatasetVersion = apps.get_model("benchmarks", "DatasetVersion")
    DatasetItem = apps.get_model("benchmarks", "DatasetItem")
    for dataset in Dataset.objects.all().iterator():
        items = dataset.items or []
        version = DatasetVersion.objects.create(
            dataset=dataset, number=1, source="migrated", note="from before versions", item_count=len(items)
        )
        DatasetItem.objects.bulk_create(
            [
                DatasetItem(
                    version=version,
                    index=i,
                    key=str(item.get("id") or i + 1)[:200],
                    prompt=item.get("text") or item.get("prompt") or "",
                    messages=item.get("messages"),
                    expected=item.get("expected"),
                    max_tokens=item.get("max_tokens") or None,
                )
                for i, item in enumerate(items)
            ],
            batch_size=1000,
        )


def versions_to_items(apps, schema_editor):
    Dataset = apps.get_model("benchmarks", "Dataset")
    for dataset in Dataset.objects.all().iterator():
        version = dataset.versions.order_by("-number").first()
        rows = version.items.order_by("index") if version else []
        dataset.items = [
            {
                "id": r.key,
                "text": r.prompt,
                "messages": r.messages,
                "input_tokens": 0,
                "max_tokens": r.max_tokens,
                "expected": r.expected,
            }
            for r in rows
        ]
        dataset.save(update_fields=["items"])


class Migration(migrations.Migration):
    dependencies = [("benchmarks", "0005_dataset_versions")]

    operations = [migrations.RunPython(items_to_versions, versions_to_items)]
