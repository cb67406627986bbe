"""
``on_delete`` across databases: what one deletion collects, checks and records.

Django's deletion ``Collector`` asks every relation pointing at the rows being
deleted what to do, by calling ``field.remote_field.on_delete``. For a
cross-database field that callable is a ``CrossDBOnDelete`` wrapping the
user's policy. It is marked ``lazy_sub_objs`` so Django hands it the
*unevaluated* queryset of dependents (built for the target's database), which
it re-points at the source's database.

- When both ends are in one database, the user's policy is Django's own and
  runs in the deletion's collector and transaction, exactly as for a
  ``ForeignKey``.
- PROTECT raises while collecting, before anything is deleted, with Django's
  ``ProtectedError``.
- CASCADE collects, without deleting, what it will remove in the source's
  database, in a collector of its own for that database, and so on down the
  chain in every database. A PROTECT anywhere raises at once; a RESTRICT
  anywhere (a cross-database one, or an ordinary ``ForeignKey``'s inside
  another database) is checked once everything is collected, with Django's
  rule: a referrer that the same deletion removes through another path does
  not restrict. The rows still restricting are handed to the deletion's own
  collector, so that its usual end-of-collect check raises ``RestrictedError``
  and the admin's ``NestedObjects`` lists them as protected.
- One deletion shares one view of what it collected, keyed by database,
  model and primary key, across all its collectors: a cycle of cascades
  across databases stops where it meets a row already collected.
- CASCADE, SET_NULL, SET_DEFAULT and SET() are *applied* only after the
  deletion has committed: two databases share no transaction, and a rolled
  back deletion must leave every dependent untouched. The intent is written
  to ``crossdb.PendingPropagation`` in the deleting database, in the
  deletion's own transaction, and applied by ``crossdb.propagation``.

Deletions that bypass the ORM (raw SQL, another application) are not seen;
``manage.py verify_links`` finds what they leave behind.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models import Model, QuerySet
from django.db.models.deletion import Collector, ProtectedError, RestrictedError

from crossdb import routers

if TYPE_CHECKING:
    from crossdb.fields import CrossDBForeignKey

# Django's policies, which the Collector tells apart by identity.
POLICIES = ("CASCADE", "PROTECT", "RESTRICT", "SET_NULL", "SET_DEFAULT", "DO_NOTHING")
# Policies applied after commit, in the source's database.
PROPAGATED_POLICIES = ("CASCADE", "SET_NULL", "SET_DEFAULT", "SET")
# models.SET() returns one of two closures; their code objects identify it.
_SET_CODES = frozenset({models.SET(None).__code__, models.SET(lambda: None).__code__})

# A row, across databases: (alias, model label, primary key).
RowKey = tuple[str, str, Any]


def policy_name(on_delete: Any) -> str | None:
    """
    Django's name for one of its own policies (``SET(...)`` closures are "SET"),
    by identity as Django's Collector dispatches them; None for anything else,
    whatever the callable is called.
    """
    for name in POLICIES:
        if on_delete is getattr(models, name):
            return name
    if getattr(on_delete, "__code__", None) in _SET_CODES:
        return "SET"
    return None


def row_key(alias: str, obj: Model) -> RowKey:
    concrete = obj._meta.concrete_model or type(obj)
    return (alias, concrete._meta.label, obj.pk)


@dataclass(frozen=True)
class _Group:
    """The deletion a propagation belongs to, while it is being applied."""

    id: str
    lifted: frozenset[RowKey]


_applying: ContextVar[_Group | None] = ContextVar("crossdb_applying", default=None)


@contextmanager
def applying(group: str, lifted: frozenset[RowKey]) -> Iterator[None]:
    """Deletions made inside belong to ``group`` and honour its lifted RESTRICTs."""
    token = _applying.set(_Group(group, lifted))
    try:
        yield
    finally:
        _applying.reset(token)


def _dependents(field: CrossDBForeignKey, sub_objs: QuerySet[Any]) -> QuerySet[Any]:
    """Django built ``sub_objs`` for the target's database; use the source's."""
    queryset = sub_objs.using(routers.source_db_for_write(field))
    # The admin's collector adds select_related(field), a join across databases,
    # and Django may defer fields the policy or __str__ needs.
    queryset.query.select_related = False
    queryset.query.clear_deferred_loading()
    return queryset  # type: ignore[no-any-return]


class Deletion:
    """
    One ORM deletion, in every database it reaches.

    ``root`` is the collector whose ``delete()`` runs; the others only
    collect, to find what a cascade would meet in another database.
    """

    def __init__(self, root: Collector) -> None:
        group = _applying.get()
        self.root = root
        self.collectors = [root]
        self.group = group.id if group else uuid.uuid4().hex
        self.lifted_before = group.lifted if group else frozenset()
        # Fields whose policy the root's deletion must record and propagate.
        self.propagate: list[CrossDBForeignKey] = []
        # Rows referring through RESTRICT, in any database: (alias, field, row).
        self.restricted: list[tuple[str, Any, Model]] = []
        # What this deletion put into root.restricted_objects, to take back.
        self._handed: dict[tuple[type[Model], Any], set[Model]] = {}
        self._fast_delete_keys: dict[int, set[Any]] = {}

    @classmethod
    def of(cls, collector: Collector) -> Deletion:
        deletion: Deletion | None = collector.__dict__.get("_crossdb_deletion")
        if deletion is None:
            deletion = cls(collector)
            collector.__dict__["_crossdb_deletion"] = deletion
            original_delete = collector.delete

            def delete() -> tuple[int, dict[str, int]]:
                from crossdb import propagation

                deletion.raise_if_restricted()
                return propagation.record_and_delete(deletion, original_delete)

            # Every ORM deletion (Model.delete, QuerySet.delete, the admin) is
            # collect() then delete() on one Collector: this is where the intent
            # joins the deletion's transaction.
            collector.delete = delete  # type: ignore[method-assign]
        return deletion

    # What is collected -----------------------------------------------------------

    def removes(self, alias: str, row: Model) -> bool:
        """Whether one of this deletion's collectors removes ``row`` of database ``alias``."""
        concrete = row._meta.concrete_model
        for collector in self.collectors:
            if collector.using != alias:
                continue
            for model, instances in collector.data.items():
                if model._meta.concrete_model is concrete and row in instances:
                    return True
            for queryset in collector.fast_deletes:
                same_model = queryset.model._meta.concrete_model is concrete
                if same_model and row.pk in self._fast_deleted(queryset):
                    return True
        return False

    def _fast_deleted(self, queryset: Any) -> set[Any]:
        known = self._fast_delete_keys.get(id(queryset))
        if known is None:
            known = set(queryset.values_list("pk", flat=True))
            self._fast_delete_keys[id(queryset)] = known
        return known

    def cascade(self, collector: Collector, field: CrossDBForeignKey, rows: QuerySet[Any]) -> None:
        """Collect, without deleting, what a cascade removes in the source's database."""
        alias = rows.db
        sub = type(collector)(using=alias, origin=collector.origin)
        if sub.can_fast_delete(rows):
            # Nothing hangs off these rows (no cascade, signal or parent): no cycle
            # or restriction can start there, and they need not be read now.
            sub.fast_deletes.append(rows)
            self.collectors.append(sub)
            self.hand_restrictions_to_root()
            return
        new = [row for row in rows if not self.removes(alias, row)]
        if not new:
            return
        sub.__dict__["_crossdb_deletion"] = self
        self.collectors.append(sub)
        sub.collect(
            new,
            source=field.remote_field.model,
            source_attr=field.name,
            nullable=field.null,
            fail_on_restricted=False,
        )
        if hasattr(collector, "nested"):
            # The admin's NestedObjects: show the cascaded rows in its tree.
            for source, targets in sub.edges.items():  # type: ignore[attr-defined]
                collector.edges.setdefault(source, []).extend(targets)  # type: ignore[attr-defined]
            for model, objs in sub.model_objs.items():  # type: ignore[attr-defined]
                collector.model_objs[model].update(objs)  # type: ignore[attr-defined]
            collector.protected.update(sub.protected)  # type: ignore[attr-defined]
        # A sub-collector collects with fail_on_restricted=False, which would
        # drop what its own ordinary ForeignKeys restrict: keep it.
        for fields in sub.restricted_objects.values():
            for restricting_field, objs in fields.items():
                self.restricted.extend((alias, restricting_field, obj) for obj in objs)
        sub.restricted_objects.clear()
        self.hand_restrictions_to_root()

    def restrict(self, field: CrossDBForeignKey, rows: QuerySet[Any]) -> None:
        self.restricted.extend((rows.db, field, row) for row in rows)
        self.hand_restrictions_to_root()

    # RESTRICT ----------------------------------------------------------------------

    def blocking(self) -> list[tuple[str, Any, Model]]:
        """The restricted rows that this deletion does not remove itself."""
        return [
            (alias, field, row)
            for alias, field, row in self.restricted
            if not self.removes(alias, row) and row_key(alias, row) not in self.lifted_before
        ]

    def lifted(self) -> frozenset[RowKey]:
        """Rows whose RESTRICT this deletion lifts, because it removes them too."""
        return self.lifted_before | {
            row_key(alias, row)
            for alias, _field, row in self.restricted
            if self.removes(alias, row)
        }

    def hand_restrictions_to_root(self) -> None:
        """
        Put the rows restricting now into the root collector's own
        ``restricted_objects``, replacing what an earlier call put there:
        Django's check at the end of the root's ``collect()`` then raises
        ``RestrictedError`` for them, and ``NestedObjects`` lists them.
        """
        # {model: {field: {rows}}}; django-stubs types its keys as instances.
        restricted: Any = self.root.restricted_objects
        for (model, field), objs in self._handed.items():
            restricted[model][field] = restricted[model].get(field, set()) - objs
        handed: dict[tuple[type[Model], Any], set[Model]] = defaultdict(set)
        for _alias, field, row in self.blocking():
            handed[type(row), field].add(row)
        for (model, field), objs in handed.items():
            restricted[model][field] = restricted[model].get(field, set()) | objs
        self._handed = handed

    def raise_if_restricted(self) -> None:
        """What the root's collect() checks, again at delete(): nothing restricted is deleted."""
        blocking = self.blocking()
        if blocking:
            raise restricted_error(
                self.root, {(type(row), field): [row] for _alias, field, row in blocking}
            )


def restricted_error(
    collector: Collector, restricted: dict[tuple[type[Model], Any], list[Model]]
) -> RestrictedError:
    by_field: dict[str, list[Model]] = defaultdict(list)
    for (model, field), objs in restricted.items():
        by_field[f"'{model.__name__}.{field.name}'"].extend(objs)
    origin: Any = collector.origin
    name = type(origin).__name__ if isinstance(origin, Model) else origin.model.__name__
    return RestrictedError(
        f"Cannot delete some instances of model {name!r} because they are referenced "
        f"through restricted foreign keys: {', '.join(by_field)}.",
        set(chain.from_iterable(by_field.values())),
    )


def raise_if_restricted(collector: Collector, lifted: frozenset[RowKey]) -> None:
    """
    Django's check at the end of ``Collector.collect(fail_on_restricted=True)``,
    for a collector that collected with ``fail_on_restricted=False``, leaving
    out rows whose RESTRICT the same deletion lifted.

    Copied from Django 5.2's ``django/db/models/deletion.py``
    (``Collector.collect``, the ``if fail_on_restricted:`` block);
    tests/test_django_copies.py notices when Django's original changes.
    """
    for related_model, instances in collector.data.items():
        collector.clear_restricted_objects_from_set(related_model, set(instances))
    for qs in collector.fast_deletes:
        collector.clear_restricted_objects_from_queryset(qs.model, qs)
    restricted: dict[tuple[type[Model], Any], list[Model]] = {}
    restricted_objects: Any = collector.restricted_objects
    for restricted_model, fields in restricted_objects.items():
        for field, objs in fields.items():
            kept = [obj for obj in objs if row_key(collector.using, obj) not in lifted]
            if kept:
                restricted[restricted_model, field] = kept
    if restricted:
        raise restricted_error(collector, restricted)


class CrossDBOnDelete:
    """The callable Django's Collector sees as ``field.remote_field.on_delete``."""

    lazy_sub_objs = True

    def __init__(self, policy: Any) -> None:
        self.policy = policy

    def __repr__(self) -> str:
        return f"CrossDBOnDelete({policy_name(self.policy) or self.policy!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CrossDBOnDelete) and other.policy == self.policy

    def __hash__(self) -> int:
        return hash((CrossDBOnDelete, self.policy))

    def __call__(
        self, collector: Collector, field: CrossDBForeignKey, sub_objs: QuerySet[Any], using: str
    ) -> None:
        name = policy_name(self.policy)
        if name is None:
            raise TypeError(
                f"{field.model._meta.label}.{field.name}: on_delete={self.policy!r} is not one "
                f"of Django's policies, so it cannot be emulated across databases (see check "
                f"crossdb.E010). Nothing was deleted."
            )
        if name == "DO_NOTHING":
            return
        dependents = _dependents(field, sub_objs)
        if dependents.db == collector.using:
            # Both ends in one database: Django's own policy, in this deletion.
            if getattr(self.policy, "lazy_sub_objs", False) or dependents:
                self.policy(collector, field, dependents, using)
            return
        if name == "PROTECT":
            protected = list(dependents)
            if protected:
                raise ProtectedError(
                    f"Cannot delete some instances of model "
                    f"'{field.remote_field.model.__name__}' because they are referenced "
                    f"through a protected foreign key: "
                    f"'{protected[0].__class__.__name__}.{field.name}' in database "
                    f"{dependents.db!r}",
                    set(protected),
                )
            return
        deletion = Deletion.of(collector)
        if name == "RESTRICT":
            deletion.restrict(field, dependents)
            return
        if collector is deletion.root and field not in deletion.propagate:
            deletion.propagate.append(field)
        if name == "CASCADE":
            deletion.cascade(collector, field, dependents)
