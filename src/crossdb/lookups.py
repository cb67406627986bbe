"""
Lookups that turn remote querysets into key values.

``Employee.objects.filter(user__in=User.objects.filter(is_staff=True))``
compiles, in Django, to a subquery run on the *employee* database, where
``auth_user`` does not exist (or worse, exists with other rows). These lookups
evaluate such a queryset on its own database, once per compilation, and use
the keys it returns; a subquery over the same database as the outer query is
left to SQL as usual.
"""

from __future__ import annotations

import copy
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db.models.fields.related_lookups import RelatedExact, RelatedIn
from django.db.models.sql.query import Query

from crossdb import routers
from crossdb.subqueries import fetch_rows, query_database


def _query_database(query: Query, field: Any) -> str:
    # A queryset of the target without .using() reads where the field reads (database=).
    explicit = getattr(query, "_db", None) or getattr(query, "crossdb_using", None)
    if query.model is not None and query.model._meta.concrete_model is field.related_model:
        return str(explicit) if explicit else routers.target_db_for_read(field)
    return query_database(query)


def remote_keys(lookup: Any, connection: Any) -> list[Any] | None:
    """
    The key values of ``lookup``'s right-hand side when it is a query for
    another database than the one being compiled for; None otherwise.
    """
    rhs = lookup.rhs
    if not isinstance(rhs, Query):
        return None
    field = lookup.lhs.output_field
    db = _query_database(rhs, field)
    if routers.same_database(db, connection.alias):
        return None
    query = rhs.clone()
    if not query.has_select_fields:
        query.clear_select_clause()
        query.add_fields([field.target_field.name])
    label = f"{field.model._meta.label}.{field.name}"
    return [row[0] for row in fetch_rows(query, db, connection, label)]


def as_subquery(lookup: Any, connection: Any) -> Any:
    """
    ``lookup``, whose right-hand side stays a subquery on ``connection``'s database: a copy
    whose query forgets a ``.using()`` that names another alias of that same database (a
    replica), which Django would refuse as a subquery across databases.
    """
    if getattr(lookup.rhs, "_db", None) in (None, connection.alias):
        return lookup
    local = copy.copy(lookup)
    local.rhs = lookup.rhs.clone()
    local.rhs._db = None
    return local


def can_hold(connection: Any, key: Any) -> bool:
    """
    Whether a column on ``connection`` can hold ``key`` at all. PostgreSQL's
    text types cannot store NUL, so no row there refers to such a key (and
    binding it would fail the whole query).
    """
    return not (isinstance(key, str) and "\x00" in key and connection.vendor == "postgresql")


class CrossDBIn(RelatedIn):
    def as_sql(self, compiler: Any, connection: Any) -> Any:
        keys = remote_keys(self, connection)
        if keys is None:
            if isinstance(self.rhs, (list, tuple, set)) and not all(
                can_hold(connection, key) for key in self.rhs
            ):
                keys = list(self.rhs)
            else:
                return RelatedIn.as_sql(as_subquery(self, connection), compiler, connection)
        keys = [key for key in keys if can_hold(connection, key)]
        if not keys:
            raise EmptyResultSet
        resolved = copy.copy(self)
        resolved.rhs = keys
        return resolved.as_sql(compiler, connection)


class CrossDBExact(RelatedExact):
    def as_sql(self, compiler: Any, connection: Any) -> Any:
        keys = remote_keys(self, connection)
        if keys is None:
            return RelatedExact.as_sql(as_subquery(self, connection), compiler, connection)
        if not keys:
            raise EmptyResultSet
        # Django only accepts a queryset sliced to one row here, so there is one key.
        resolved = copy.copy(self)
        resolved.rhs = keys[0]
        return resolved.as_sql(compiler, connection)
