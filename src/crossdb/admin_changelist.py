"""
The admin's changelist without joins across databases: ``list_display`` and
``list_select_related`` through a cross-database relation prefetched (one query per
target database per page), ordering and filters rewritten in two steps. Used by
``crossdb.admin.CrossDBModelAdminMixin``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Aggregate, Model, Q, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest

from crossdb.conf import crossdb_settings
from crossdb.fields import CrossDBForeignKey
from crossdb.query import CrossDBQuerySetMixin, rewrite_q

# Django's select_related() without arguments follows non-null foreign keys this deep.
_SELECT_RELATED_DEPTH = 5


def _cross_db_field(model: type[Model], name: Any) -> CrossDBForeignKey | None:
    if not isinstance(name, str):
        return None
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    return field if isinstance(field, CrossDBForeignKey) else None


def _relations(model: type[Model], path: str) -> tuple[list[str], bool]:
    """The forward relations ``path`` follows from ``model``, and whether one crosses databases."""
    names: list[str] = []
    crosses = False
    opts: Any = model._meta
    for part in path.split(LOOKUP_SEP):
        try:
            field = opts.get_field(part)
        except FieldDoesNotExist:
            break
        if not (field.is_relation and field.concrete and not field.many_to_many):
            break
        names.append(part)
        crosses = crosses or isinstance(field, CrossDBForeignKey)
        opts = field.related_model._meta
    return names, crosses


def _crosses_databases(model: type[Model], path: str) -> bool:
    return _relations(model, path)[1]


def _list_display_prefetches(model: type[Model], list_display: Sequence[Any]) -> list[str]:
    lookups: dict[str, None] = {}
    for name in list_display:
        if isinstance(name, str):
            names, crosses = _relations(model, name)
            if crosses:
                lookups[LOOKUP_SEP.join(names)] = None
    return list(lookups)


def _list_display_joins(model: type[Model], list_display: Sequence[Any]) -> list[str]:
    """The foreign keys named in ``list_display`` that an SQL join can follow."""
    names = []
    for name in list_display:
        if not isinstance(name, str):
            continue
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        # get_field() also answers to "user_id", which needs no join.
        if (
            field.is_relation
            and field.concrete
            and not field.many_to_many
            and name != getattr(field, "attname", None)
            and not isinstance(field, CrossDBForeignKey)
        ):
            names.append(name)
    return names


def _joinable_paths(model: type[Model], prefix: str = "", depth: int = 1) -> list[str]:
    """What ``select_related()`` without arguments would follow, minus cross-database fields."""
    paths: list[str] = []
    for field in model._meta.concrete_fields:
        remote = field.remote_field
        if remote is None or field.null or remote.parent_link:
            continue
        if isinstance(field, CrossDBForeignKey):
            continue
        path = f"{prefix}{field.name}"
        deeper: list[str] = []
        if depth < _SELECT_RELATED_DEPTH:
            deeper = _joinable_paths(remote.model, f"{path}{LOOKUP_SEP}", depth + 1)
        paths.extend(deeper or [path])
    return paths


def _orderable(model: type[Model], order_field: str) -> str | None:
    """
    ``order_field`` with a cross-database relation replaced by its key column;
    None when ordering would need the target's columns, i.e. an SQL join.
    """
    sign = "-" if order_field.startswith("-") else ""
    parts = order_field.removeprefix("-").split(LOOKUP_SEP)
    opts: Any = model._meta
    for index, part in enumerate(parts):
        try:
            field = opts.get_field(part)
        except FieldDoesNotExist:
            return order_field
        if isinstance(field, CrossDBForeignKey):
            rest = parts[index + 1 :]
            key = field.target_field
            key_names = {key.name, key.attname, *(("pk",) if key.primary_key else ())}
            if rest and (len(rest) > 1 or rest[0] not in key_names):
                return None
            # Ordering by the relation itself would join the target when it has Meta.ordering.
            return sign + LOOKUP_SEP.join([*parts[:index], field.attname])
        if not field.is_relation:
            return order_field
        opts = field.related_model._meta
    return order_field


class _ChangeListQuerySetMixin(CrossDBQuerySetMixin):
    """Also rewrites the ``filter=`` of aggregates: the list filters' facet counts."""

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        kwargs = {name: _rewrite_filter(self.model, value) for name, value in kwargs.items()}
        return super().aggregate(*args, **kwargs)


def _rewrite_filter(model: type[Model], aggregate: Any) -> Any:
    if not isinstance(aggregate, Aggregate):
        return aggregate
    # Django 6.0+ wraps the condition in an AggregateFilter; 5.2 keeps the Q itself.
    wrapper = aggregate.filter
    condition = getattr(wrapper, "condition", wrapper)
    if not isinstance(condition, Q):
        return aggregate
    rewritten = aggregate.copy()
    rewritten_q = rewrite_q(model, condition)
    rewritten.filter = rewritten_q if wrapper is condition else type(wrapper)(rewritten_q)
    return rewritten


@cache
def _with_cross_db_filters(queryset_class: type[QuerySet[Any]]) -> type[QuerySet[Any]]:
    return type(
        f"CrossDB{queryset_class.__name__}",
        (_ChangeListQuerySetMixin, queryset_class),
        {"__module__": __name__},
    )


def _cross_db_queryset(queryset: QuerySet[Any]) -> QuerySet[Any]:
    """``queryset``, able to filter through cross-database relations whatever its class."""
    if isinstance(queryset, _ChangeListQuerySetMixin):
        return queryset
    # Python refuses __class__ assignment between these classes; copy the state instead.
    cls = _with_cross_db_filters(type(queryset))
    rewriting = cls.__new__(cls)
    vars(rewriting).update(vars(queryset._chain()))  # type: ignore[attr-defined]
    return rewriting


class CrossDBChangeList(ChangeList):
    """
    A changelist that prefetches cross-database fields instead of joining them, and
    filters through them (``list_filter = ["user__is_staff"]``) in two steps.
    """

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> Any:
        # The list filters' lookups go through rewrite_q, as the search's do.
        self.root_queryset = _cross_db_queryset(self.root_queryset)
        return super().get_queryset(request, exclude_parameters)

    def apply_select_related(self, qs: QuerySet[Any]) -> QuerySet[Any]:
        # Django joins every foreign key in list_display (5.2: every non-null one
        # in the model once list_display has any), cross-database ones included:
        # our queryset loads those in a second step (crossdb.select_related). The
        # "raise" branch follows Django 5.2's ChangeList.apply_select_related
        # (django/contrib/admin/views/main.py) case by case, leaving out the paths
        # that cross; tests/test_django_copies.py notices when it changes.
        if crossdb_settings.SELECT_RELATED != "raise":
            return super().apply_select_related(_cross_db_queryset(qs))
        if self.list_select_related is True:
            paths = _joinable_paths(self.model)
        elif self.list_select_related is False:
            paths = _list_display_joins(self.model, self.list_display)
        else:
            paths = [
                path
                for path in self.list_select_related
                if not _crosses_databases(self.model, path)
            ]
        return qs.select_related(*paths) if paths else qs

    def get_ordering_field(self, field_name: Any) -> Any:
        order_field = super().get_ordering_field(field_name)
        if isinstance(order_field, str):
            return _orderable(self.model, order_field)
        return order_field

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # The page is still an unevaluated queryset: one query per target database fills it.
        if lookups := _list_display_prefetches(self.model, self.list_display):
            self.result_list = self.result_list.prefetch_related(*lookups)
