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
from crossdb.conf import crossdb_settings
from crossdb.exceptions import TooManyKeys


def _query_database(query: Query, field: Any) -> str:
    db: str | None = getattr(query, "_db", None)
    if db:
        return db
    if query.model is not None and query.model._meta.concrete_model is field.related_model:
        return routers.target_db_for_read(field)
    assert query.model is not None
    return routers.db_for_read(query.model)


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
    if db == connection.alias:
        return None
    query = rhs.clone()
    query.subquery = False
    if not query.has_select_fields:
        query.clear_select_clause()
        query.add_fields([field.target_field.name])
    keys = [row[0] for row in query.get_compiler(using=db).results_iter()]
    limit = crossdb_settings.MAX_LOOKUP_KEYS
    params = connection.features.max_query_params
    if len(keys) > limit or (params and len(keys) > params):
        cap = min(limit, params) if params else limit
        raise TooManyKeys(
            f"{field.model._meta.label}.{field.name}: the queryset on database {db!r} "
            f"returned {len(keys)} keys, more than the {cap} one query on database "
            f"{connection.alias!r} may hold (CROSSDB_MAX_LOOKUP_KEYS or the backend's "
            f"parameter limit). Narrow the remote queryset, or iterate in batches."
        )
    return keys


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
                return super().as_sql(compiler, connection)
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
            return super().as_sql(compiler, connection)
        if not keys:
            raise EmptyResultSet
        # Django only accepts a queryset sliced to one row here, so there is one key.
        resolved = copy.copy(self)
        resolved.rhs = keys[0]
        return resolved.as_sql(compiler, connection)
