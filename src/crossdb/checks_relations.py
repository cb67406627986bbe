"""
Django relations whose two ends the routers put in different databases.

A plain ``ForeignKey(User, db_constraint=False)`` on a model routed elsewhere passes
``manage.py check`` and fails later: "the current database router prevents this
relation", "no such table", or a read of a stray copy of the table. ``check_relations``
warns at startup instead, naming the field to use.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core import checks
from django.db.models import Model

from crossdb import routers
from crossdb.exceptions import TargetDatabaseError


def _databases(model: type[Model]) -> tuple[str, str]:
    return routers.db_for_read(model), routers.db_for_write(model)


def _replacement(field: Any) -> str:
    if field.many_to_many:
        return (
            "Replace it with a through model in the source's database holding a "
            "crossdb.CrossDBForeignKey to each model in another database."
        )
    name = "CrossDBOneToOneField" if field.one_to_one else "CrossDBForeignKey"
    return f"Use crossdb.{name}, which reads the target from its own database."


def _crosses(model: type[Model], target: type[Model]) -> tuple[str, str] | None:
    """The two databases, when the routers put ``model`` and ``target`` in different ones."""
    for source_db, target_db in zip(_databases(model), _databases(target), strict=True):
        if not routers.same_database(source_db, target_db):
            return source_db, target_db
    return None


@checks.register(checks.Tags.models)
def check_relations(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    models = (
        apps.get_models()
        if app_configs is None
        else [m for config in app_configs for m in config.get_models()]
    )
    return [message for model in models for message in check_model_relations(model)]


def check_model_relations(model: type[Model]) -> list[checks.CheckMessage]:
    """W020 for each of ``model``'s own Django relations that the routers split."""
    from crossdb.fields import CrossDBForeignKey

    messages: list[checks.CheckMessage] = []
    for field in model._meta.get_fields(include_hidden=True):
        # Forward relations only: a column, or a many-to-many's table.
        if not field.is_relation or field.auto_created:
            continue
        if not (field.concrete or field.many_to_many):
            continue
        target = field.related_model
        if isinstance(field, CrossDBForeignKey) or not isinstance(target, type):
            continue
        try:
            crossing = _crosses(model, target)
        except TargetDatabaseError:
            continue
        if crossing is not None:
            messages.append(
                checks.Warning(
                    f"{type(field).__name__} {model._meta.label}.{field.name} points to "
                    f"{target._meta.label}, but the routers put {model._meta.label} in "
                    f"database {crossing[0]!r} and {target._meta.label} in {crossing[1]!r}: "
                    f"Django cannot follow it across databases.",
                    hint=_replacement(field),
                    obj=field,
                    id="crossdb.W020",
                )
            )
    return messages
