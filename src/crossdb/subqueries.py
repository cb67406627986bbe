"""
Querysets of one database used inside a query on another.

``User.objects.filter(pk__in=Employee.objects.filter(position="CTO").values("user_id"))``
is compiled by Django as a subquery of the users' query, on the users' database, where
``hr_employee`` does not exist. Which database the outer query runs on is known only when
it is compiled (``as_sql(compiler, connection)``), so the queries of a ``CrossDBQuerySet``
are ``CrossDBQuery`` objects, which decide there:

- on the same database (``routers.same_database``: one alias, a mirror, a replica), the
  subquery is SQL as usual;
- on another one, an uncorrelated subquery is evaluated on its own database first, once
  per compilation and bounded like the lookups (``CROSSDB_MAX_LOOKUP_KEYS``), and its rows
  become a literal list (``IN``, ``Subquery``) or a constant (``Exists``);
- a correlated one (``OuterRef``) would be a join between two databases: it raises
  ``CrossDatabaseJoinError``, naming the two-step way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django.core.exceptions import EmptyResultSet
from django.db.models.sql.query import Query

from crossdb import routers
from crossdb.conf import crossdb_settings
from crossdb.exceptions import CrossDatabaseJoinError, TooManyKeys

if TYPE_CHECKING:
    from django.db.models import QuerySet

    _QuerySetBase = QuerySet[Any]
else:
    _QuerySetBase = object


def query_database(query: Query) -> str:
    """Where ``query`` reads when evaluated on its own: its ``.using()``, else the routers'."""
    using = getattr(query, "_db", None) or getattr(query, "crossdb_using", None)
    if using:
        return str(using)
    assert query.model is not None
    return routers.db_for_read(query.model)


def fetch_rows(query: Query, using: str, connection: Any, label: str) -> list[Any]:
    """
    The rows of ``query`` read on ``using``, to travel as parameters of a query on
    ``connection``: at most ``CROSSDB_MAX_LOOKUP_KEYS`` (and the backend's parameter
    limit), else ``TooManyKeys``. ``label`` names what asked, for the message.
    """
    limit = crossdb_settings.MAX_LOOKUP_KEYS
    params = connection.features.max_query_params
    cap = min(limit, params) if params else limit
    query = query.clone()
    query.subquery = False
    # One row more than allowed is enough to refuse: the rest is never read.
    query.set_limits(high=cap + 1)
    rows = list(query.get_compiler(using=using).results_iter())
    if len(rows) > cap:
        raise TooManyKeys(
            f"{label}: the queryset on database {using!r} returned more than {cap} keys, "
            f"the most one query on database {connection.alias!r} may hold "
            f"(CROSSDB_MAX_LOOKUP_KEYS or the backend's parameter limit). Narrow the "
            f"remote queryset, or iterate in batches."
        )
    return rows


class CrossDBQuery(Query):
    """A ``Query`` that, as a subquery of another database's query, is evaluated on its own."""

    crossdb_using: str | None = None
    crossdb_exists = False

    def exists(self, limit: bool = True) -> CrossDBQuery:
        query = cast(CrossDBQuery, super().exists(limit))
        query.crossdb_exists = True
        return query

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        using = query_database(self)
        if not self.subquery or routers.same_database(using, connection.alias):
            return super().as_sql(compiler, connection)
        if self.get_external_cols():
            raise CrossDatabaseJoinError(self._correlated_message(using, connection.alias))
        # Once per compilation of the outer query, however often it asks.
        cache = compiler.__dict__.setdefault("_crossdb_subqueries", {})
        if id(self) not in cache:
            cache[id(self)] = self._evaluate(using, connection)
        sql, params = cache[id(self)]
        return sql, list(params)

    def _evaluate(self, using: str, connection: Any) -> tuple[str, list[Any]]:
        assert self.model is not None
        label = f"a subquery on {self.model._meta.label}"
        if self.crossdb_exists:
            if not fetch_rows(self, using, connection, label):
                raise EmptyResultSet
            return f"(SELECT 1{connection.features.bare_select_suffix})", []
        rows = fetch_rows(self, using, connection, label)
        if not rows:
            raise EmptyResultSet
        field = self.output_field
        if len(rows[0]) == 1:
            prep = (lambda v: v) if field is None else _db_prep(field, connection)
            params = [prep(value) for (value,) in rows]
            return f"({', '.join(['%s'] * len(params))})", params
        width = ", ".join(["%s"] * len(rows[0]))
        return (
            f"({', '.join([f'({width})'] * len(rows))})",
            [value for row in rows for value in row],
        )

    def _correlated_message(self, using: str, outer: str) -> str:
        assert self.model is not None
        name = self.model._meta.object_name
        return (
            f"A subquery on {self.model._meta.label} (database {using!r}) refers to the outer "
            f"query on database {outer!r} through OuterRef(), which would join tables of two "
            f"databases. Do it in two steps: filter the outer query by keys the inner one "
            f"selects without OuterRef(), e.g. pk__in={name}.objects.filter(...)"
            f".values('<key of the outer row>'), which is evaluated on {using!r} first; or "
            f"load the related rows with prefetch_related()."
        )


def _db_prep(field: Any, connection: Any) -> Any:
    def prep(value: Any) -> Any:
        return None if value is None else field.get_db_prep_value(value, connection)

    return prep


class CrossDBSubqueryMixin(_QuerySetBase):
    """Makes a QuerySet's queries ``CrossDBQuery`` objects that know the queryset's ``.using()``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        query = self.query
        if type(query) is Query:
            query.__class__ = CrossDBQuery
        if isinstance(query, CrossDBQuery):
            query.crossdb_using = self._db  # type: ignore[attr-defined]

    def using(self, alias: str | None) -> Any:
        clone = super().using(alias)
        if isinstance(clone.query, CrossDBQuery):
            clone.query.crossdb_using = alias
        return clone

    def resolve_expression(self, *args: Any, **kwargs: Any) -> Any:
        query = super().resolve_expression(*args, **kwargs)
        if isinstance(query, CrossDBQuery):
            # The database is compared with the outer one's when compiled; Django's own
            # check of _db (In.process_rhs) would refuse a replica of the same database.
            query.crossdb_using, query._db = query._db, None  # type: ignore[attr-defined]
        return query
