from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("benchmarks", "0006_dataset_items_to_versions")]

    operations = [migrations.RemoveField(model_name="dataset", name="items")]
