"""
Applying ``on_delete`` in the referencing databases, after the deletion committed.

A deletion that reaches another database writes one ``PendingPropagation``
row per field and thousand keys, in the deleting database and transaction
(``record_and_delete``). From then on:

- **Who applies it.** A row is applied by whoever holds its claim: a token
  and a lease end set by one ``UPDATE ... WHERE unclaimed or expired``. The
  deleting process writes its rows already claimed and applies them from
  ``transaction.on_commit``; ``propagate_pending()`` (``manage.py
  propagate_deletions``) claims what nobody holds, so a process that died
  gives its rows back when the lease (``CROSSDB_PROPAGATION_LEASE``) ends, and
  two runners never apply one row at once.
- **When.** Only once the referencing database has no transaction open: the
  caller's transaction there (``ATOMIC_REQUESTS``, a ``TestCase``, an
  ``atomic()`` block) holds locks and uncommitted rows a second connection
  could not see, so the propagation waits for that transaction's commit, with
  ``transaction.on_commit(using=<referencing database>)``. If it rolls back,
  the row stays and a later run applies it.
- **Exactly which rows.** Keys are filtered with the column's ordinary
  (indexed) predicate, re-checked in Python, and acted on by primary key: a
  case-insensitive or pad-space collation cannot widen a key to others.
- **Removed after commit, never before.** The pending row is deleted (with
  raw SQL: no signal sees the library's bookkeeping) only after the
  propagation's own transaction committed. A crash in between re-applies it,
  which is harmless: only rows still holding a deleted key are touched, and
  a target re-created with the same key keeps its references.
- **One bad key fails alone.** A key the referencing column cannot hold has
  no dependents there and is skipped; any other key whose application fails
  stays pending with its error, and the rest are applied.
- **One database down stops only its own work.** Each database is reached
  once before its records are read, and each referencing database before it
  is written to; one that cannot be reached is named in
  ``PropagationResult.unreachable``, the records that need it stay pending
  with that error, and the other databases' records are applied.
"""

from __future__ import annotations

import contextlib
import logging
import math
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, transaction
from django.db.models import F, Model, Q
from django.db.models.deletion import Collector
from django.utils import timezone

from crossdb import capture_queue, routers
from crossdb.batching import batch_size, chunks
from crossdb.conf import crossdb_settings
from crossdb.deletion import (
    Deletion,
    RowKey,
    applying,
    policy_name,
    raise_if_restricted,
)
from crossdb.lookups import can_hold

if TYPE_CHECKING:
    from crossdb.fields import CrossDBForeignKey
    from crossdb.models import PendingPropagation

logger = logging.getLogger("crossdb.deletion")

# Keys stored per PendingPropagation row.
KEYS_PER_ROW = 1000
# Rows one runner claims at a time.
CLAIM_BATCH = 100
# Keys SQL compares exactly whatever the column's collation (strings are not).
_EXACT_IN_SQL = (int, uuid.UUID)
# Failures that say nothing about a key: retrying key by key would only repeat them.
_CONNECTION_ERRORS = (OperationalError, InterfaceError)


@dataclass
class PropagationResult:
    applied: int = 0
    failed: int = 0
    rows_changed: int = 0
    # Left alone: younger than older_than, or claimed by a runner whose lease runs.
    skipped_young: int = 0
    skipped_claimed: int = 0
    # When the last lease of the records left to other runners ends.
    claims_end: Any = None
    errors: list[str] = dataclass_field(default_factory=list)
    # {"id", "database", "link", "error"} of each record that failed.
    failures: list[dict[str, Any]] = dataclass_field(default_factory=list)
    # {alias: why it could not be reached}; and the aliases that were reached.
    unreachable: dict[str, str] = dataclass_field(default_factory=dict)
    reached: set[str] = dataclass_field(default_factory=set)

    def databases(self) -> list[str]:
        """The aliases this run involved, in DATABASES order."""
        involved = self.reached | set(self.unreachable)
        return [alias for alias in connections.settings if alias in involved]

    def claimed_hint(self) -> str:
        until = self.claims_end.isoformat() if self.claims_end else "its lease ends"
        return (
            f"applied by it, or by a run after {until} if it died "
            f"(CROSSDB_PROPAGATION_LEASE={crossdb_settings.PROPAGATION_LEASE:g}s)."
        )

    def as_dict(self) -> dict[str, Any]:
        """The body of ``propagate_deletions --format json``'s document (JSON types only)."""
        return {
            "applied": self.applied,
            "failed": self.failed,
            "rows_changed": self.rows_changed,
            "failures": self.failures,
            "unreachable": self.unreachable,
            "skipped": {
                "too_young": {
                    "count": self.skipped_young,
                    "how_to_apply_now": "run propagate_deletions without --older-than",
                },
                "claimed": {
                    "count": self.skipped_claimed,
                    "claimed_until": self.claims_end.isoformat() if self.claims_end else None,
                    "how_to_apply_now": self.claimed_hint(),
                },
            },
        }


def reach(alias: str, result: PropagationResult) -> bool:
    """Whether ``alias`` accepts a connection; tried once per run, remembered in ``result``."""
    if alias in result.reached:
        return True
    if alias in result.unreachable:
        return False
    try:
        connections[alias].ensure_connection()
    except Exception as exc:
        result.unreachable[alias] = _reason(exc)
        logger.warning("Database %r is unreachable: %s", alias, result.unreachable[alias])
        return False
    result.reached.add(alias)
    return True


def _reason(exc: BaseException) -> str:
    """The exception's type and the first line of its message."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _new_token() -> str:
    return uuid.uuid4().hex


def _lease_end() -> Any:
    return timezone.now() + timedelta(seconds=crossdb_settings.PROPAGATION_LEASE)


# Recording -------------------------------------------------------------------------


def _deleted_keys(collector: Collector, field: CrossDBForeignKey) -> list[Any]:
    target = field.remote_field.model._meta.concrete_model
    key_attname = field.target_field.attname
    keys: dict[Any, None] = {}
    for model, instances in collector.data.items():
        if model._meta.concrete_model is target:
            for obj in instances:
                keys[getattr(obj, key_attname)] = None
    return list(keys)


def record_and_delete(
    deletion: Deletion, original_delete: Callable[[], tuple[int, dict[str, int]]]
) -> tuple[int, dict[str, int]]:
    """Run the root collector's delete() with its propagations recorded in its transaction."""
    from crossdb.models import PendingPropagation

    collector = deletion.root
    token, lifted = _new_token(), deletion.lifted()
    # A captured link's trigger writes the record; ORM deletions claim it (capture_queue).
    captured = [field for field in deletion.propagate if field.capture_deletes]

    # Read before delete(), which sets the instances' primary keys to None.
    keys = {field: _deleted_keys(collector, field) for field in deletion.propagate}

    def records(fields: list[CrossDBForeignKey]) -> list[PendingPropagation]:
        rows = []
        for field in fields:
            for chunk in chunks(keys[field], KEYS_PER_ROW):
                row = PendingPropagation(
                    source_model=field.model._meta.label,
                    source_field=field.name,
                    target_model=field.remote_field.model._meta.label,
                    deletion_group=deletion.group,
                    claim_token=token,
                    claimed_until=_lease_end(),
                )
                row.keys = list(chunk)
                row.lifted = lifted
                rows.append(row)
        return rows

    rows = records([field for field in deletion.propagate if field not in captured])
    using = collector.using
    with transaction.atomic(using=using, savepoint=False):
        PendingPropagation.objects.using(using).bulk_create(rows)
        after = capture_queue.last_id(using) if captured else 0
        result = original_delete()
        if captured:
            # No trigger row (not installed, or capture suspended): record it ourselves.
            uncaptured = capture_queue.claim_new(using, captured, after, token)
            fallback = records(uncaptured)
            PendingPropagation.objects.using(using).bulk_create(fallback)
            rows.extend(fallback)
    if rows:
        ids = [row.pk for row in rows]
        transaction.on_commit(partial(after_commit, using, ids, token), using=using)
    if captured and len(uncaptured) < len(captured):
        callback = partial(capture_queue.after_commit, using, token, deletion.group, lifted)
        transaction.on_commit(callback, using=using)
    return result


def after_commit(using: str, ids: list[int], token: str, deferred: bool = False) -> None:
    try:
        apply_claimed(using, ids, token, deferred=deferred)
    except Exception:
        # The deletion itself has committed: failing the caller now would
        # report a deletion that happened as one that did not.
        logger.exception(
            "Propagating deletions from database %r failed; the pending rows stay "
            "for `manage.py propagate_deletions`.",
            using,
        )


# Claims ----------------------------------------------------------------------------


def _records(using: str) -> Any:
    from crossdb.models import PendingPropagation

    return PendingPropagation.objects.using(using)


def _renew(using: str, ids: Iterable[int], token: str) -> list[PendingPropagation]:
    """The rows of ``ids`` still claimed with ``token``, their lease renewed."""
    ids = list(ids)
    _records(using).filter(pk__in=ids, claim_token=token).update(claimed_until=_lease_end())
    return list(_records(using).filter(pk__in=ids, claim_token=token).order_by("pk"))


def _release(using: str, row: PendingPropagation, token: str, error: str, **changes: Any) -> None:
    _records(using).filter(pk=row.pk, claim_token=token).update(
        claim_token="",
        claimed_until=None,
        attempts=F("attempts") + 1,
        last_error=error[:10_000],
        **changes,
    )


def _forget(using: str, row: PendingPropagation, token: str) -> None:
    """Delete a pending row without signals: it is the library's bookkeeping, not user data."""
    connection = connections[using]
    qn = connection.ops.quote_name
    table = qn(row._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE {qn('id')} = %s AND {qn('claim_token')} = %s",
            [row.pk, token],
        )


# Applying --------------------------------------------------------------------------


def apply_claimed(
    using: str,
    ids: list[int],
    token: str,
    result: PropagationResult | None = None,
    deferred: bool = False,
) -> PropagationResult:
    """
    Apply the rows of ``ids`` stored in ``using`` that ``token`` still claims.

    Rows whose referencing database is inside a transaction wait for its
    commit (unless ``deferred``: they are that commit's callback).
    """
    result = result or PropagationResult()
    rows = _renew(using, ids, token)
    batches: dict[tuple[str, str], list[PendingPropagation]] = {}
    for row in rows:
        try:
            source_db = routers.source_db_for_write(_link(row))
        except Exception as exc:
            _fail(using, row, token, exc, result)
            continue
        batches.setdefault((row.deletion_group, source_db), []).append(row)
    for (_group, source_db), batch in batches.items():
        if not reach(source_db, result):
            down = ConnectionError(
                f"the referencing database {source_db!r} is unreachable "
                f"({result.unreachable[source_db]})"
            )
            for row in batch:
                _fail(using, row, token, down, result)
            continue
        if not deferred and connections[source_db].in_atomic_block:
            transaction.on_commit(
                partial(after_commit, using, [row.pk for row in batch], token, True),
                using=source_db,
            )
            continue
        _apply_batch(using, source_db, batch, token, result)
    return result


def _fail(
    using: str, row: PendingPropagation, token: str, exc: Exception, result: PropagationResult
) -> None:
    error = f"{type(exc).__name__}: {exc}"
    _failed(using, row, error, result)
    _release(using, row, token, error)


def _failed(using: str, row: PendingPropagation, error: str, result: PropagationResult) -> None:
    result.failed += 1
    result.errors.append(f"{row}: {error}")
    result.failures.append(
        {
            "id": row.pk,
            "database": using,
            "link": f"{row.source_model}.{row.source_field}",
            "error": error,
        }
    )
    logger.warning("Could not apply %s: %s", row, error)


def _apply_batch(
    using: str,
    source_db: str,
    rows: list[PendingPropagation],
    token: str,
    result: PropagationResult,
) -> None:
    """
    Apply the rows of one deletion that act on ``source_db``: together first,
    so that rows one of them deletes lift RESTRICTs another meets (and
    ordinary foreign keys between them see one transaction), else one by one.
    """
    plans: list[tuple[PendingPropagation, _Plan]] = []
    for row in rows:
        try:
            plans.append((row, _Plan.of(row, using, source_db)))
        except Exception as exc:
            _fail(using, row, token, exc, result)
    if len(plans) > 1:
        try:
            with transaction.atomic(using=source_db):
                changed = _execute([plan for _row, plan in plans], source_db)
        except Exception:
            logger.info("Applying %d rows together failed; applying them one by one.", len(plans))
        else:
            result.rows_changed += changed
            for row, _plan in plans:
                _forget(using, row, token)
                result.applied += 1
            return
    for row, plan in plans:
        _apply_row(using, source_db, row, plan, token, result)


def _apply_row(
    using: str,
    source_db: str,
    row: PendingPropagation,
    plan: _Plan,
    token: str,
    result: PropagationResult,
) -> None:
    try:
        with transaction.atomic(using=source_db):
            result.rows_changed += _execute([plan], source_db)
    except _CONNECTION_ERRORS as exc:
        _fail(using, row, token, exc, result)
        return
    except Exception as exc:
        if len(plan.keys) <= 1:
            _fail(using, row, token, exc, result)
            return
        failed = _apply_key_by_key(plan, source_db, result)
    else:
        failed = {}
    if failed:
        error = "; ".join(f"key {key!r}: {message}" for key, message in failed.items())
        _failed(using, row, error, result)
        _release(using, row, token, error, keys_json=_keys_json(list(failed)))
        return
    _forget(using, row, token)
    result.applied += 1


def _apply_key_by_key(plan: _Plan, source_db: str, result: PropagationResult) -> dict[Any, str]:
    failed: dict[Any, str] = {}
    for key in plan.keys:
        try:
            with transaction.atomic(using=source_db):
                result.rows_changed += _execute([plan.only(key)], source_db)
        except Exception as exc:
            failed[key] = f"{type(exc).__name__}: {exc}"
    return failed


def _keys_json(keys: list[Any]) -> str:
    from crossdb.models import PendingPropagation

    holder = PendingPropagation()
    holder.keys = keys
    return holder.keys_json


def _link(row: PendingPropagation) -> CrossDBForeignKey:
    field: CrossDBForeignKey = apps.get_model(row.source_model)._meta.get_field(row.source_field)
    return field


@dataclass
class _Plan:
    """What one pending row still has to do: the field, and the keys really gone."""

    field: CrossDBForeignKey
    name: str
    keys: list[Any]
    group: str
    lifted: frozenset[RowKey]

    @classmethod
    def of(cls, row: PendingPropagation, using: str, source_db: str) -> _Plan:
        return cls.for_keys(_link(row), row.keys, using, source_db, row.deletion_group, row.lifted)

    @classmethod
    def for_keys(
        cls,
        field: CrossDBForeignKey,
        stored_keys: Iterable[Any],
        using: str,
        source_db: str,
        group: str,
        lifted: frozenset[RowKey],
    ) -> _Plan:
        """The plan for keys as stored (JSON values, or a trigger's text) in ``using``."""
        name = policy_name(field.on_delete)
        if name not in ("CASCADE", "SET_NULL", "SET_DEFAULT", "SET"):
            raise TypeError(
                f"{field.model._meta.label}.{field.name} has on_delete={field.on_delete!r} "
                f"now; nothing to propagate for it."
            )
        key_field = field.target_field
        keys = list(dict.fromkeys(key_field.to_python(key) for key in stored_keys))
        # A key the referencing column cannot hold has no dependents there.
        keys = [key for key in keys if can_hold(connections[source_db], key)]
        # A target re-created with the same key since the deletion keeps its references.
        alive = _existing(field.remote_field.model, key_field.attname, keys, using)
        gone = [key for key in keys if key not in alive]
        return cls(field, name, gone, group, lifted)

    def only(self, key: Any) -> _Plan:
        return _Plan(self.field, self.name, [key], self.group, self.lifted)


def _existing(model: type[Model], attname: str, keys: list[Any], using: str) -> set[Any]:
    """The keys among ``keys`` that exist in ``using``, compared exactly (not by collation)."""
    wanted = set(keys)
    found: set[Any] = set()
    manager = model._base_manager.using(using)
    for chunk in chunks(keys, batch_size(using)):
        found.update(
            key
            for key in manager.filter(**{f"{attname}__in": chunk}).values_list(attname, flat=True)
            if key in wanted
        )
    return found


def _execute(plans: list[_Plan], source_db: str) -> int:
    """Apply ``plans`` inside the caller's transaction on ``source_db``; rows changed."""
    changed = 0
    collector: Collector | None = None
    for plan in plans:
        field, attname = plan.field, plan.field.attname
        manager = field.model._base_manager.using(source_db)
        new_value: list[Any] = []
        for chunk in chunks(plan.keys, batch_size(source_db)):
            rows = manager.filter(**{f"{attname}__in": chunk})
            exact = all(isinstance(key, _EXACT_IN_SQL) for key in chunk)
            # Reading the keys back also tells SET() whether any row needs its value.
            if not exact or plan.name != "CASCADE":
                # A collation may match other spellings: re-check, act by primary key.
                wanted = set(chunk)
                pairs = rows.values_list("pk", attname)
                pks = [pk for pk, key in pairs if key in wanted]
                if not pks:
                    continue
                rows = manager.filter(pk__in=pks)
            if plan.name == "CASCADE":
                collector = collector or Collector(using=source_db, origin=rows)
                with applying(plan.group, plan.lifted):
                    collector.collect(rows, fail_on_restricted=False)
                continue
            if not new_value:
                # Like Django, compute SET()'s value only when a row needs it.
                new_value.append(_new_value(field, plan.name))
            changed += rows.update(**{attname: new_value[0]})
    if collector is not None:
        lifted = frozenset().union(*(plan.lifted for plan in plans))
        with applying(plans[0].group, lifted):
            raise_if_restricted(collector, lifted)
            changed += collector.delete()[0]
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


# The runner ------------------------------------------------------------------------


# timezone.now() minus more than this would leave datetime's range (and no record is that old).
MAX_OLDER_THAN = 10 * 365 * 24 * 3600


def older_than_seconds(raw: Any, option: str = "older_than") -> float:
    """``raw`` as a finite number of seconds from 0 to MAX_OLDER_THAN, else ValueError."""
    value = math.nan
    if isinstance(raw, (int, float, str)) and not isinstance(raw, bool):
        with contextlib.suppress(ValueError):
            value = float(raw)
    if not (math.isfinite(value) and 0 <= value <= MAX_OLDER_THAN):
        raise ValueError(
            f"{option}: {str(raw)!r} is not a number of seconds from 0 to {MAX_OLDER_THAN} "
            f"(10 years)."
        )
    return value


# progress(done, total): records handled so far, of the records found at the start.
Progress = Callable[[int, int], None]


def propagate_pending(
    using: str | Iterable[str] | None = None,
    *,
    ids: Iterable[int] | None = None,
    older_than: timedelta | None = None,
    progress: Progress | None = None,
) -> PropagationResult:
    """
    Apply pending cross-database on_delete effects, idempotently.

    ``using`` is a database alias, several, or None for every database. Only
    rows nobody holds a claim on are taken (a process that died gives its
    rows back when its lease ends); ``older_than`` also leaves rows younger
    than that. Rows that fail stay pending with their error recorded; a
    database that cannot be reached is named in ``result.unreachable`` and
    the others are still worked on. ``progress(done, total)`` is called as
    records are handled. Deletions captured by triggers
    (``capture_deletes=True``) are applied too, unless ``ids`` picks pending rows.
    """
    aliases = (
        list(settings.DATABASES)
        if using is None
        else ([using] if isinstance(using, str) else list(using))
    )
    result = PropagationResult()
    wanted = None if ids is None else list(ids)
    selections: dict[str, Any] = {}
    for alias in aliases:
        if reach(alias, result):
            selections[alias] = _selection(alias, wanted, older_than, result)
    total = [0, 0]  # done, total
    if progress is not None:
        total[1] = sum(
            _guarded(alias, result, records.count, 0) for alias, records in selections.items()
        )
        progress(0, total[1])

    def advance(count: int) -> None:
        if progress is not None:
            total[0] = min(total[0] + count, total[1])
            progress(*total)

    for alias, records in selections.items():
        _guarded(alias, result, partial(_propagate_database, alias, records, result, advance), None)
        if wanted is None and alias not in result.unreachable:
            captured = partial(capture_queue.propagate_captured, alias, older_than, result)
            _guarded(alias, result, captured, None)
    return result


def _guarded(alias: str, result: PropagationResult, work: Callable[[], Any], failed: Any) -> Any:
    """``work()``, or ``failed`` when ``alias`` stops answering (it is then unreachable)."""
    try:
        return work()
    except _CONNECTION_ERRORS as exc:
        if alias in result.unreachable:
            return failed
        connection = connections[alias]
        if connection.connection is not None and connection.is_usable():
            raise
        result.reached.discard(alias)
        result.unreachable[alias] = _reason(exc)
        logger.warning("Database %r stopped answering: %s", alias, result.unreachable[alias])
        return failed


def _selection(
    alias: str, ids: list[int] | None, older_than: timedelta | None, result: PropagationResult
) -> Any:
    records = _records(alias)
    if ids is not None:
        records = records.filter(pk__in=ids)
    if older_than:
        cutoff = timezone.now() - older_than
        young = _guarded(alias, result, records.filter(created_at__gt=cutoff).count, 0)
        result.skipped_young += young
        records = records.filter(created_at__lte=cutoff)
    return records


def _propagate_database(
    alias: str, records: Any, result: PropagationResult, advance: Callable[[int], None]
) -> None:
    for token, free, seen in claim_batches(records, CLAIM_BATCH, result):
        if token is not None:
            apply_claimed(alias, free, token, result)
        advance(seen)


def claim_batches(
    records: Any, size: int, result: PropagationResult
) -> Iterator[tuple[str | None, list[int], int]]:
    """
    Claim ``records`` (pending or captured rows) nobody holds, ``size`` at a time
    in primary key order, each batch with one ``UPDATE ... WHERE`` unclaimed or
    expired; yield each batch's token (None if it claimed nothing), the ids it
    may hold, and how many rows the batch looked at.
    """
    last = 0
    while True:
        now = timezone.now()
        candidates = records.filter(pk__gt=last).order_by("pk")
        batch = list(candidates.values_list("pk", "claimed_until")[:size])
        if not batch:
            return
        last = batch[-1][0]
        free = [pk for pk, until in batch if until is None or until < now]
        result.skipped_claimed += len(batch) - len(free)
        held = [until for _pk, until in batch if until is not None and until >= now]
        if held:
            result.claims_end = max([*held, result.claims_end or held[0]])
        if not free:
            yield None, free, len(batch)
            continue
        token = _new_token()
        claimable = Q(claimed_until__isnull=True) | Q(claimed_until__lt=timezone.now())
        claimed = records.filter(claimable, pk__in=free).update(
            claim_token=token, claimed_until=_lease_end()
        )
        result.skipped_claimed += len(free) - claimed
        yield (token if claimed else None), free, len(batch)
