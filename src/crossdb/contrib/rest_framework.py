"""
Django REST framework serializers for models with cross-database relations.

DRF's ModelSerializer builds a related field over the target's default
manager, so validating a key reads the database the routers give the target;
a field with ``database=`` reads somewhere else. ``CrossDBModelSerializer``
builds the same fields over the database the field itself reads
(``crossdb.routers.target_db_for_read``), and represents a ``to_field``
relation by the key the source row already holds instead of loading the
target once per row.

Importing this module imports DRF; ``import crossdb`` never does.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django.db.models import Model
from rest_framework import serializers  # type: ignore[import-untyped]
from rest_framework.fields import get_attribute  # type: ignore[import-untyped]

from crossdb import routers
from crossdb.fields import CrossDBForeignKey

__all__ = ["CrossDBModelSerializer", "CrossDBModelSerializerMixin", "CrossDBSlugRelatedField"]


class CrossDBSlugRelatedField(serializers.SlugRelatedField):  # type: ignore[misc]
    """A relation through ``to_field``, shown as the key column's value: no query."""

    def get_attribute(self, instance: Model) -> Any:
        if self.source_attrs:
            parent = get_attribute(instance, self.source_attrs[:-1])
            key = parent.serializable_value(self.source_attrs[-1])
            if not isinstance(key, Model):
                # The source row holds the target's slug itself.
                return None if key is None else SimpleNamespace(**{self.slug_field: key})
        return super().get_attribute(instance)


class CrossDBModelSerializerMixin:
    """Mix into a ModelSerializer: its cross-database relations read the target's database."""

    def build_relational_field(
        self, field_name: str, relation_info: Any
    ) -> tuple[type[Any], dict[str, Any]]:
        field_class, field_kwargs = super().build_relational_field(  # type: ignore[misc]
            field_name, relation_info
        )
        model_field = relation_info.model_field
        if not isinstance(model_field, CrossDBForeignKey) or relation_info.reverse:
            return field_class, field_kwargs
        if "queryset" in field_kwargs:
            using = routers.target_db_for_read(model_field)
            field_kwargs["queryset"] = field_kwargs["queryset"].using(using)
        if field_class is serializers.SlugRelatedField:
            field_class = CrossDBSlugRelatedField
        return field_class, field_kwargs


class CrossDBModelSerializer(CrossDBModelSerializerMixin, serializers.ModelSerializer):  # type: ignore[misc]
    """A ModelSerializer for models with cross-database relations."""
