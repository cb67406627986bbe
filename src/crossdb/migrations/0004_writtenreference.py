from django.db import migrations, models

import crossdb.models


class Migration(migrations.Migration):
    dependencies = [
        ("crossdb", "0003_captureddeletion"),
    ]

    operations = [
        migrations.CreateModel(
            name="WrittenReference",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("link", models.CharField(max_length=200)),
                ("source_pk", crossdb.models.ExactTextField()),
                ("logged_at", models.DateTimeField()),
            ],
            options={
                "verbose_name": "written reference",
                "ordering": ["id"],
                "indexes": [
                    models.Index(fields=["link", "id"], name="crossdb_written_link_id"),
                ],
            },
        ),
    ]
