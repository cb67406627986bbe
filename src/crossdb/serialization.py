"""
Natural foreign keys across databases in ``loaddata`` and ``serializers.deserialize()``.

Django's deserializers resolve a natural foreign key with ``get_by_natural_key()`` on the
database being loaded into, where a cross-database target's table does not exist (or is a
stray copy). The XML one does it itself (``_handle_fk_field_node``, with ``self.db``), the
others through ``base.deserialize_fk_value(..., self.using, ...)``.

``install()`` registers, through Django's ``register_serializer()``, the modules of
``crossdb.serializers`` for the built-in formats: Django's serializers, and Django's
deserializers with these mixins, which send the look-up of a cross-database field to the
target's database. A format that ``SERIALIZATION_MODULES`` maps to a module of your own is
left alone: mix ``CrossDBDeserializerMixin`` (``CrossDBXMLDeserializerMixin`` for XML)
into your deserializer. Plain keys need no look-up and are untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core import serializers
from django.core.serializers import BUILTIN_SERIALIZERS, base

from crossdb import routers

if TYPE_CHECKING:
    from django.core.serializers.python import Deserializer as PythonDeserializer
    from django.core.serializers.xml_serializer import Deserializer as XMLDeserializer

    _PythonBase = PythonDeserializer
    _XMLBase = XMLDeserializer
else:
    _PythonBase = _XMLBase = object


def _target_db(field: Any) -> str | None:
    from crossdb.fields import CrossDBForeignKey

    return routers.target_db_for_read(field) if isinstance(field, CrossDBForeignKey) else None


class CrossDBDeserializerMixin(_PythonBase):
    """For Django's Python, JSON, JSON Lines and YAML deserializers."""

    # Adapted from Django 5.2's django/core/serializers/python.py (_handle_fk_field_node).
    def _handle_fk_field_node(self, field: Any, field_value: Any) -> Any:
        using = _target_db(field)
        if using is None:
            return super()._handle_fk_field_node(field, field_value)  # type: ignore[misc]
        forward = self.handle_forward_references  # type: ignore[attr-defined]
        return base.deserialize_fk_value(field, field_value, using, forward)


class CrossDBXMLDeserializerMixin(_XMLBase):
    """For Django's XML deserializer, which resolves natural keys on ``self.db``."""

    # Adapted from Django 5.2's django/core/serializers/xml_serializer.py: its
    # _handle_fk_field_node reads natural keys on self.db, which this swaps.
    def _handle_fk_field_node(self, node: Any, field: Any) -> Any:
        using = _target_db(field)
        if using is None:
            return super()._handle_fk_field_node(node, field)  # type: ignore[misc]
        loading_into, self.db = self.db, using
        try:
            return super()._handle_fk_field_node(node, field)  # type: ignore[misc]
        finally:
            self.db = loading_into


FORMATS = {
    "python": "crossdb.serializers.python",
    "json": "crossdb.serializers.json",
    "jsonl": "crossdb.serializers.jsonl",
    "yaml": "crossdb.serializers.pyyaml",
    "xml": "crossdb.serializers.xml_serializer",
}


def install() -> None:
    """Register ``crossdb.serializers`` for each built-in format still served by Django's module."""
    for format, module in FORMATS.items():
        try:
            current = serializers.get_serializer(format)
        except serializers.SerializerDoesNotExist:
            continue
        if getattr(current, "__module__", None) == BUILTIN_SERIALIZERS[format]:
            serializers.register_serializer(format, module)
