"""
Refusing SQL joins across databases, with the way out for the direction taken.

Django asks a relation's field for the extra ON condition of every join it compiles
(``Join.as_sql`` calls ``join_field.get_extra_restriction(table_alias, parent_alias)``);
for a join from the target back to the source (``User.objects.filter(employees__...)``)
the join field is the reverse relation, which swaps the aliases and asks the field, so
the field sees the same arguments in both directions. The direction is told when the
condition is compiled: the compiler's query holds the join, and a forward join's is the
field's own. ``exclude()`` through a reverse relation asks while it builds its subquery,
with no alias for the target (``Query.trim_start``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from crossdb.exceptions import CrossDatabaseJoinError

if TYPE_CHECKING:
    from crossdb.fields import CrossDBForeignKey


def forward_message(field: CrossDBForeignKey) -> str:
    target = field.remote_field.model._meta
    return (
        f"{field.model._meta.label}.{field.name} points to {target.label} in another "
        f"database, so no SQL join can follow it (select_related(), filters, "
        f"values() or ordering through '{field.name}__...'). Load related rows with "
        f"prefetch_related('{field.name}') or prefetch_cross_db('{field.name}'), and "
        f"filter by key with {field.name}__in={target.object_name}.objects.filter(...)."
    )


def reverse_message(field: CrossDBForeignKey) -> str:
    source, target = field.model._meta, field.remote_field.model._meta
    accessor = field.remote_field.get_accessor_name()
    query_name = field.related_query_name()
    key = "pk" if field.target_field.primary_key else field.target_field.name
    return (
        f"{target.label}.{accessor} follows {source.label}.{field.name} back into another "
        f"database, so no SQL join can follow it (filters, exclude(), annotations, "
        f"aggregations or ordering through '{query_name}__...'). Filter in two steps: "
        f"{target.object_name}.objects.filter({key}__in={source.object_name}.objects"
        f".filter(...).values('{field.attname}')), which reads {source.label} on its own "
        f"database first when its manager is a CrossDBManager; count or load the related "
        f"rows with prefetch_related('{accessor}')."
    )


class RefusedJoin:
    """The ON condition of a join between two databases: compiling it raises."""

    def __init__(self, field: CrossDBForeignKey, alias: str) -> None:
        self.field = field
        self.alias = alias  # the target's table, whichever way the join goes

    def as_sql(self, compiler: Any, connection: Any) -> NoReturn:
        join = compiler.query.alias_map.get(self.alias)
        if getattr(join, "join_field", None) is self.field:
            raise CrossDatabaseJoinError(forward_message(self.field))
        raise CrossDatabaseJoinError(reverse_message(self.field))


def refuse_join(field: CrossDBForeignKey, alias: str | None) -> RefusedJoin:
    """``field.get_extra_restriction(alias, related_alias)`` of a cross-database field."""
    if alias is None:
        # Query.trim_start(): exclude() through the reverse relation.
        raise CrossDatabaseJoinError(reverse_message(field))
    return RefusedJoin(field, alias)
