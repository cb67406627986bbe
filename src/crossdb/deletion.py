"""
``on_delete`` across databases.

Django's deletion ``Collector`` asks every relation pointing at the rows being
deleted what to do, by calling ``field.remote_field.on_delete``. For a
cross-database field that callable is a ``CrossDBOnDelete`` wrapping the
user's policy. It is marked ``lazy_sub_objs`` so Django hands it the
*unevaluated* queryset of dependents (built for the target's database), which
it re-points at the source's database.

- PROTECT and RESTRICT are checked while collecting, before anything is
  deleted, and raise Django's own ``ProtectedError`` / ``RestrictedError``.
- CASCADE collects the dependents in the source's database at once too
  (without deleting), so that a PROTECT or RESTRICT further down the chain,
  in any database, blocks the deletion before it starts.
- CASCADE, SET_NULL, SET_DEFAULT and SET() are *applied* only after the
  target's deletion has committed: two databases share no transaction, and a
  rolled back deletion must leave every dependent untouched. The intent is
  written to ``crossdb.PendingPropagation`` in the target's database, in the
  deletion's own transaction; ``transaction.on_commit`` applies it and removes
  the row. A process that dies in between leaves the row for
  ``propagate_pending()`` / ``manage.py propagate_deletions``.

Deletions that bypass the ORM (raw SQL, another application) are not seen;
``manage.py verify_links`` finds what they leave behind.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.db import models, transaction
from django.db.models import Model, QuerySet
from django.db.models.deletion import Collector, ProtectedError, RestrictedError
from django.utils import timezone

from crossdb import routers
from crossdb.batching import batch_size, chunks

if TYPE_CHECKING:
    from crossdb.fields import CrossDBForeignKey

logger = logging.getLogger("crossdb.deletion")

# Policies applied after commit, in the source's database.
PROPAGATED_POLICIES = ("CASCADE", "SET_NULL", "SET_DEFAULT", "SET")
# Keys stored per PendingPropagation row.
KEYS_PER_ROW = 1000


def policy_name(on_delete: Any) -> str:
    """Django's name for a policy; SET(...) closures are "SET"."""
    if getattr(on_delete, "deconstruct", None) is not None:
        return "SET"
    return str(getattr(on_delete, "__name__", on_delete))


@dataclass
class _DeletionState:
    """What one Collector learned about its cross-database dependents."""

    propagate: list[CrossDBForeignKey] = dataclass_field(default_factory=list)
    restricted: list[tuple[CrossDBForeignKey, QuerySet[Any]]] = dataclass_field(
        default_factory=list
    )
    cascaded: list[Collector] = dataclass_field(default_factory=list)


def _state(collector: Collector) -> _DeletionState:
    state: _DeletionState | None = collector.__dict__.get("_crossdb_state")
    if state is None:
        state = _DeletionState()
        collector.__dict__["_crossdb_state"] = state
        original_delete = collector.delete

        def delete() -> tuple[int, dict[str, int]]:
            return _delete_and_record(collector, state, original_delete)

        # Every ORM deletion (Model.delete, QuerySet.delete, the admin) is
        # collect() then delete() on one Collector: this is where the intent
        # joins the deletion's transaction.
        collector.delete = delete  # type: ignore[method-assign]
    return state


def _dependents(field: CrossDBForeignKey, sub_objs: QuerySet[Any]) -> QuerySet[Any]:
    """Django built ``sub_objs`` for the target's database; use the source's."""
    queryset = sub_objs.using(routers.source_db_for_write(field))
    # The admin's collector adds select_related(field), a join across databases,
    # and Django may defer fields the policy or __str__ needs.
    queryset.query.select_related = False
    queryset.query.clear_deferred_loading()
    return queryset  # type: ignore[no-any-return]


class CrossDBOnDelete:
    """The callable Django's Collector sees as ``field.remote_field.on_delete``."""

    lazy_sub_objs = True

    def __init__(self, policy: Any) -> None:
        self.policy = policy

    def __repr__(self) -> str:
        return f"CrossDBOnDelete({policy_name(self.policy)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CrossDBOnDelete) and other.policy == self.policy

    def __hash__(self) -> int:
        return hash((CrossDBOnDelete, self.policy))

    def __call__(
        self, collector: Collector, field: CrossDBForeignKey, sub_objs: QuerySet[Any], using: str
    ) -> None:
        name = policy_name(self.policy)
        if name == "DO_NOTHING":
            return
        if not callable(self.policy) or (
            name not in PROPAGATED_POLICIES and name not in ("PROTECT", "RESTRICT")
        ):
            raise TypeError(
                f"{field.model._meta.label}.{field.name}: on_delete={self.policy!r} cannot "
                f"be emulated across databases (see check crossdb.E004/E005)."
            )
        dependents = _dependents(field, sub_objs)
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
        state = _state(collector)
        if name == "RESTRICT":
            state.restricted.append((field, dependents))
            return
        if field not in state.propagate:
            state.propagate.append(field)
        if name == "CASCADE":
            _collect_cascade(collector, state, field, dependents)


def _collect_cascade(
    collector: Collector,
    state: _DeletionState,
    field: CrossDBForeignKey,
    dependents: QuerySet[Any],
) -> None:
    """
    Collect, without deleting, what the cascade will delete in the source's database.

    Any PROTECT on the way raises now, before the target is deleted. The
    admin's NestedObjects gets the collected rows added to its tree so the
    delete-confirmation page lists them.
    """
    nested = hasattr(collector, "nested")
    sub_collector = type(collector)(using=dependents.db, origin=collector.origin)
    sub_collector.collect(
        dependents,
        source=field.remote_field.model,
        source_attr=field.name,
        nullable=field.null,
        fail_on_restricted=False,
    )
    if nested:
        for source, targets in sub_collector.edges.items():  # type: ignore[attr-defined]
            collector.edges.setdefault(source, []).extend(targets)  # type: ignore[attr-defined]
        for model, objs in sub_collector.model_objs.items():  # type: ignore[attr-defined]
            collector.model_objs[model].update(objs)  # type: ignore[attr-defined]
        collector.protected.update(sub_collector.protected)  # type: ignore[attr-defined]
    state.cascaded.append(sub_collector)


def _cascaded_keys(state: _DeletionState) -> set[tuple[str, Any, Any]]:
    keys: set[tuple[str, Any, Any]] = set()
    for sub in state.cascaded:
        for model, instances in sub.data.items():
            keys.update((sub.using, model._meta.concrete_model, obj.pk) for obj in instances)
        for queryset in sub.fast_deletes:
            concrete = queryset.model._meta.concrete_model
            keys.update((sub.using, concrete, pk) for pk in queryset.values_list("pk", flat=True))
    return keys


def _check_restricted(state: _DeletionState) -> None:
    blocked: dict[str, list[Model]] = {}
    cascaded: set[tuple[str, Any, Any]] | None = None
    for field, dependents in state.restricted:
        rows = list(dependents)
        if rows and cascaded is None:
            cascaded = _cascaded_keys(state)
        kept = [
            row
            for row in rows
            if (dependents.db, row._meta.concrete_model, row.pk) not in (cascaded or ())
        ]
        if kept:
            blocked.setdefault(f"'{field.model.__name__}.{field.name}'", []).extend(kept)
    if blocked:
        raise RestrictedError(
            f"Cannot delete some instances because they are referenced through "
            f"restricted foreign keys in another database: {', '.join(blocked)}.",
            {row for rows in blocked.values() for row in rows},
        )


def _deleted_keys(collector: Collector, field: CrossDBForeignKey) -> list[Any]:
    target = field.remote_field.model._meta.concrete_model
    key_attname = field.target_field.attname
    keys: dict[Any, None] = {}
    for model, instances in collector.data.items():
        if model._meta.concrete_model is target:
            for obj in instances:
                keys[getattr(obj, key_attname)] = None
    return list(keys)


def _delete_and_record(
    collector: Collector, state: _DeletionState, original_delete: Any
) -> tuple[int, dict[str, int]]:
    from crossdb.models import PendingPropagation

    _check_restricted(state)
    rows: list[PendingPropagation] = []
    for field in state.propagate:
        for chunk in chunks(_deleted_keys(collector, field), KEYS_PER_ROW):
            row = PendingPropagation(
                source_model=field.model._meta.label,
                source_field=field.name,
                target_model=field.remote_field.model._meta.label,
            )
            row.keys = list(chunk)
            rows.append(row)
    using = collector.using
    with transaction.atomic(using=using, savepoint=False):
        PendingPropagation.objects.using(using).bulk_create(rows)
        result = original_delete()
    if rows:
        ids = [row.pk for row in rows]
        transaction.on_commit(lambda: _propagate_after_commit(using, ids), using=using)
    return result  # type: ignore[no-any-return]


def _propagate_after_commit(using: str, ids: list[int]) -> None:
    try:
        propagate_pending(using=using, ids=ids)
    except Exception:
        # The deletion itself has committed: failing the caller now would
        # report a deletion that happened as one that did not.
        logger.exception(
            "Propagating deletions from database %r failed; the pending rows stay "
            "for `manage.py propagate_deletions`.",
            using,
        )


@dataclass
class PropagationResult:
    applied: int = 0
    failed: int = 0
    rows_changed: int = 0


def _link(row: Any) -> CrossDBForeignKey:
    field: CrossDBForeignKey = apps.get_model(row.source_model)._meta.get_field(row.source_field)
    return field


def _apply(row: Any, using: str) -> int:
    """Apply one pending row's policy; return the number of dependent rows changed."""
    field = _link(row)
    target = field.remote_field.model
    key_name = field.target_field.attname
    key_field = field.target_field
    keys = [key_field.to_python(key) for key in row.keys]
    # A target re-created with the same key since the deletion keeps its references.
    alive = set(
        target._base_manager.using(using)
        .filter(**{f"{key_name}__in": keys})
        .values_list(key_name, flat=True)
    )
    keys = [key for key in keys if key not in alive]
    if not keys:
        return 0
    source_db = routers.source_db_for_write(field)
    name = policy_name(field.on_delete)
    changed = 0
    with transaction.atomic(using=source_db):
        for chunk in chunks(keys, batch_size(source_db)):
            dependents = field.model._base_manager.using(source_db).filter(
                **{f"{field.attname}__in": chunk}
            )
            if name == "CASCADE":
                changed += dependents.delete()[0]
            elif dependents.exists():
                # Like Django, compute SET()'s value only when a row needs it.
                changed += dependents.update(**{field.attname: _new_value(field, name)})
    return changed


def _new_value(field: CrossDBForeignKey, name: str) -> Any:
    if name == "SET_NULL":
        return None
    if name == "SET_DEFAULT":
        return field.get_default()
    # SET(value or callable): Django's closure hides the value; its deconstruct keeps it.
    value = field.on_delete.deconstruct()[1][0]
    value = value() if callable(value) else value
    if isinstance(value, Model):
        value = getattr(value, field.target_field.attname)
    return value


def propagate_pending(
    using: str | Iterable[str] | None = None,
    *,
    ids: Iterable[int] | None = None,
    older_than: timedelta | None = None,
) -> PropagationResult:
    """
    Apply pending cross-database on_delete effects, idempotently.

    ``using`` is a database alias, several, or None for every database. Rows
    that fail stay pending with their error recorded. Call it from a
    scheduler (or ``manage.py propagate_deletions``) to finish what a process
    that died after a deletion left undone; ``older_than`` skips rows young
    enough that their own process is probably still applying them.
    """
    from django.conf import settings

    from crossdb.models import PendingPropagation

    aliases = (
        list(settings.DATABASES)
        if using is None
        else ([using] if isinstance(using, str) else list(using))
    )
    result = PropagationResult()
    for alias in aliases:
        rows = PendingPropagation.objects.using(alias).all()
        if ids is not None:
            rows = rows.filter(pk__in=list(ids))
        if older_than is not None:
            rows = rows.filter(created_at__lte=timezone.now() - older_than)
        for row in rows.iterator():
            try:
                result.rows_changed += _apply(row, alias)
            except Exception as exc:
                result.failed += 1
                PendingPropagation.objects.using(alias).filter(pk=row.pk).update(
                    attempts=models.F("attempts") + 1, last_error=f"{type(exc).__name__}: {exc}"
                )
                logger.warning("Could not apply %s: %s", row, exc)
                continue
            PendingPropagation.objects.using(alias).filter(pk=row.pk).delete()
            result.applied += 1
    return result
