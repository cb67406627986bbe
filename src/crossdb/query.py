"""
QuerySets that follow cross-database relations the way Rails' ``disable_joins`` does.

``Employee.objects.filter(user__username__startswith="a")`` needs a join to
``auth_user``, which lives in another database. ``CrossDBQuerySet`` rewrites
such a condition into ``user__in=<User queryset on the user's database>``;
``crossdb.lookups`` then evaluates that queryset on its own database (one
query, chunk-capped by CROSSDB_MAX_LOOKUP_KEYS) and filters by the keys.
Conditions on the same relation inside one ``filter()`` call become one
remote query, so ``filter(user__is_staff=True, user__username="a")`` means
"the same user", as it does in SQL.

``select_related()`` through a cross-database field loads the relation in a
second step, one query per target database (``crossdb.select_related``).

Use it as a manager (``objects = CrossDBManager()``), or mix
``CrossDBQuerySetMixin`` into your own QuerySet class.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from django.db.models import Manager, Q, QuerySet, query_utils
from django.db.models.constants import LOOKUP_SEP

from crossdb import routers, select_related
from crossdb.subqueries import CrossDBSubqueryMixin

if TYPE_CHECKING:
    from crossdb.fields import CrossDBForeignKey

    _QuerySetBase = QuerySet[Any]
else:
    _QuerySetBase = object


_PROHIBITED_FILTER_KWARGS: frozenset[str] = getattr(
    query_utils, "PROHIBITED_FILTER_KWARGS", frozenset()
)


def _cross_db_field(model: Any, name: str) -> CrossDBForeignKey | None:
    from crossdb.fields import CrossDBForeignKey

    try:
        field = model._meta.get_field(name)
    except Exception:
        return None
    return field if isinstance(field, CrossDBForeignKey) else None


def _needs_remote(field: CrossDBForeignKey, rest: list[str]) -> bool:
    """Whether ``<field>__<rest>`` reaches past the key into the target's columns."""
    if not rest:
        return False
    first = rest[0]
    if first in ("pk", field.target_field.name, field.target_field.attname) and (
        first != "pk" or field.target_field.primary_key
    ):
        return False
    return field.get_lookup(first) is None and field.get_transform(first) is None


def rewrite_q(model: Any, q: Q) -> Q:
    """Return ``q`` with conditions across databases turned into key lookups."""
    remote: dict[str, tuple[CrossDBForeignKey, dict[str, Any]]] = {}
    children: list[Any] = []
    for child in q.children:
        if isinstance(child, Q):
            children.append(rewrite_q(model, child))
            continue
        if not isinstance(child, tuple):
            # An expression (Exists(...), a conditional expression): SQL of its own.
            children.append(child)
            continue
        key, value = child
        name, *rest = key.split(LOOKUP_SEP)
        field = _cross_db_field(model, name)
        if field is None or not _needs_remote(field, rest):
            children.append(child)
            continue
        if q.connector == Q.AND:
            remote.setdefault(name, (field, {}))[1][LOOKUP_SEP.join(rest)] = value
        else:
            children.append(
                Q(**{f"{name}__in": _remote_queryset(field, {LOOKUP_SEP.join(rest): value})})
            )
    for name, (field, conditions) in remote.items():
        children.append((f"{name}__in", _remote_queryset(field, conditions)))
    rewritten: Q = Q.create(children, connector=q.connector, negated=q.negated)
    return rewritten


def _remote_queryset(field: CrossDBForeignKey, conditions: dict[str, Any]) -> QuerySet[Any]:
    target = field.related_model
    # A CrossDBQuerySet whatever the target's manager is, so that a further hop
    # across databases (asset -> employee -> user) is rewritten in turn.
    queryset = CrossDBQuerySet(model=target, using=routers.target_db_for_read(field))
    return queryset.filter(**conditions).values(field.target_field.name)  # type: ignore[no-any-return]


class CrossDBQuerySetMixin(CrossDBSubqueryMixin):
    """
    Adds ``prefetch_cross_db()``, filtering through cross-database relations, and
    subqueries evaluated on their own database (``crossdb.subqueries``).
    """

    def _filter_or_exclude_inplace(self, negate: bool, args: Any, kwargs: Any) -> None:
        # Refuse _connector/_negated as Django does, before they vanish into a Q.
        if invalid := _PROHIBITED_FILTER_KWARGS.intersection(kwargs):
            raise TypeError(f"The following kwargs are invalid: {', '.join(sorted(invalid))}")
        q = rewrite_q(self.model, Q(*args, **kwargs))
        super()._filter_or_exclude_inplace(negate, (q,), {})  # type: ignore[misc]

    def prefetch_cross_db(self, *lookups: Any) -> Any:
        """
        ``prefetch_related()`` for cross-database relations, spelled out.

        Every lookup Django's ``prefetch_related`` accepts works here, mixed
        with ordinary relations; a cross-database step costs one query per
        target database per chunk of keys.
        """
        return self.prefetch_related(*lookups)

    # select_related() across databases: a second step (crossdb.select_related).

    def _fetch_all(self) -> None:
        if self._result_cache is None:
            self._result_cache = select_related.fetch_all(self)
        super()._fetch_all()

    def _iterator(self, use_chunked_fetch: bool, chunk_size: int | None) -> Iterator[Any]:
        how = select_related.plan(self)
        if how is None:
            return super()._iterator(use_chunked_fetch, chunk_size)  # type: ignore[misc, no-any-return]
        return select_related.iterate(self, how, use_chunked_fetch, chunk_size)

    async def aiterator(self, chunk_size: int = 2000) -> AsyncIterator[Any]:
        how = select_related.plan(self)
        if how is None:
            async for row in super().aiterator(chunk_size):
                yield row
            return
        async for row in how.prefetching(self).aiterator(chunk_size):
            yield row


class CrossDBQuerySet(CrossDBQuerySetMixin, QuerySet):  # type: ignore[type-arg]
    pass


class CrossDBManager(Manager.from_queryset(CrossDBQuerySet)):  # type: ignore[misc]
    pass
