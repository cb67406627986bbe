"""
Natural foreign keys across databases in ``loaddata``.

Django's deserializers resolve a natural foreign key with
``get_by_natural_key()`` on the database being loaded into, where a
cross-database target's table does not exist. Every deserializer calls
``django.core.serializers.base.deserialize_fk_value`` through the module, so
wrapping it once, for cross-database fields only, sends the look-up to the
target's database. Plain keys need no look-up and are untouched.
"""

from __future__ import annotations

from typing import Any

from django.core.serializers import base

from crossdb import routers


def install() -> None:
    original = base.deserialize_fk_value
    if getattr(original, "crossdb", False):
        return

    def deserialize_fk_value(
        field: Any, field_value: Any, using: str | None, handle_forward_references: bool
    ) -> Any:
        from crossdb.fields import CrossDBForeignKey

        if isinstance(field, CrossDBForeignKey):
            using = routers.target_db_for_read(field)
        return original(field, field_value, using, handle_forward_references)

    deserialize_fk_value.crossdb = True  # type: ignore[attr-defined]
    base.deserialize_fk_value = deserialize_fk_value
