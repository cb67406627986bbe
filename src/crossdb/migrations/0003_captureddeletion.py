import django.utils.timezone
from django.db import migrations, models

import crossdb.models


class Migration(migrations.Migration):
    dependencies = [
        ("crossdb", "0002_claims_and_groups"),
    ]

    operations = [
        migrations.CreateModel(
            name="CapturedDeletion",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("link", models.CharField(max_length=200)),
                ("target_key", crossdb.models.ExactTextField(blank=True, default="")),
                ("kind", models.CharField(default="delete", max_length=8)),
                (
                    "created_at",
                    models.DateTimeField(db_index=True, default=django.utils.timezone.now),
                ),
                ("claim_token", models.CharField(blank=True, default="", max_length=32)),
                ("claimed_until", models.DateTimeField(blank=True, db_index=True, null=True)),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("last_error", models.TextField(blank=True, default="")),
            ],
            options={
                "verbose_name": "captured deletion",
                "ordering": ["id"],
            },
        ),
    ]
