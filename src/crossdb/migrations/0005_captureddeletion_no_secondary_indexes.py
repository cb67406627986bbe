"""
The capture queue keeps its primary key only: each index entry is paid by every
row a capture trigger writes (see ``CapturedDeletion``'s docstring).

The indexes are dropped by name, found by introspection, not by ``AlterField``:
on SQLite that would rebuild the table, and while the old one is gone SQLite
rejects the rename, because the capture triggers on other tables of the same
database write into it ("error in trigger ...: no such table").
"""

from typing import Any

import django.utils.timezone
from django.db import migrations, models

COLUMNS = ("created_at", "claimed_until")


def _indexes(schema_editor: Any, model: Any) -> list[tuple[str, str]]:
    """``(index name, column)`` of the single-column, non-unique indexes on COLUMNS."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return [
        (name, about["columns"][0])
        for name, about in sorted(constraints.items())
        if about["index"]
        and not (about["primary_key"] or about["unique"])
        and len(about["columns"]) == 1
        and about["columns"][0] in COLUMNS
    ]


def drop_indexes(apps: Any, schema_editor: Any) -> None:
    model = apps.get_model("crossdb", "CapturedDeletion")
    for name, column in _indexes(schema_editor, model):
        schema_editor.remove_index(model, models.Index(fields=[column], name=name))


def create_indexes(apps: Any, schema_editor: Any) -> None:
    model = apps.get_model("crossdb", "CapturedDeletion")
    present = {column for _name, column in _indexes(schema_editor, model)}
    for column in COLUMNS:
        if column not in present:
            name = f"crossdb_capdel_{column}"
            schema_editor.add_index(model, models.Index(fields=[column], name=name))


class Migration(migrations.Migration):
    dependencies = [
        ("crossdb", "0004_writtenreference"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="captureddeletion",
                    name="created_at",
                    field=models.DateTimeField(default=django.utils.timezone.now),
                ),
                migrations.AlterField(
                    model_name="captureddeletion",
                    name="claimed_until",
                    field=models.DateTimeField(blank=True, null=True),
                ),
            ],
            database_operations=[migrations.RunPython(drop_indexes, create_indexes)],
        ),
    ]
