"""
Applying captured deletions: the ``crossdb.CapturedDeletion`` rows the triggers wrote.

They go through ``crossdb.propagation``'s machinery (``_Plan``: exact keys,
targets re-created since; ``_execute``: the policy in the source's database),
a batch of rows at a time, one plan per link:

- **Claimed** like pending propagations, with one ``UPDATE ... WHERE``
  unclaimed or expired per batch; a runner that died gives its rows back when
  its lease ends.
- **ORM deletions** of a captured link write no ``PendingPropagation`` for it:
  in the deletion's transaction, right after the delete, they claim the rows
  their own trigger wrote (``claim_new``) and apply them after commit, with the
  deletion's lifted ``RESTRICT``s. A link whose trigger wrote nothing (missing,
  or suspended) falls back to a ``PendingPropagation`` row, so nothing is lost.
- **Removed after commit**, in batches, by id and claim token. ``truncate``
  markers are never claimed: no key-by-key propagation follows a ``TRUNCATE``
  (check ``crossdb.W042`` reports them).
- **Batches expanded first** (PostgreSQL): a ``batch`` row holds the keys of one
  DELETE statement; ``expand_batches`` replaces it by one ``delete`` row per key
  in a single statement (the batch row deleted, the key rows inserted, both or
  neither), skipping batch rows another transaction holds, before the runner or
  the deletion's own claim reads the queue.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import connections, transaction
from django.db.models import Case, Count, F, Func, IntegerField, JSONField, Sum, Value, When
from django.db.models.functions import Cast
from django.utils import timezone

from crossdb import propagation, routers
from crossdb.batching import batch_size, chunks
from crossdb.capture_sql import QUEUE_COLUMNS
from crossdb.deletion import RowKey

if TYPE_CHECKING:
    from crossdb.fields import CrossDBForeignKey
    from crossdb.propagation import PropagationResult

logger = logging.getLogger("crossdb.deletion")

# Captured rows (one key each) one runner claims and applies at a time.
CAPTURE_BATCH = 500
# The kind of PostgreSQL's rows of one statement's keys (a JSON array of texts).
BATCH = "batch"


def queue(using: str) -> Any:
    from crossdb.models import CapturedDeletion

    return CapturedDeletion.objects.using(using)


# Claiming ------------------------------------------------------------------------------------


def last_id(using: str) -> int:
    """The highest queue id ``using`` shows now; the deletion's own rows come after it."""
    return int(queue(using).order_by("-pk").values_list("pk", flat=True).first() or 0)


def expand_batches(using: str, after: int = 0, links: list[str] | None = None) -> int:
    """
    Replace the ``batch`` rows in ``using`` (after id ``after``, of ``links`` if
    given) by one ``delete`` row per key, with the batch's ``created_at``, in one
    statement; skip those another transaction holds. Return the key rows written.
    Only PostgreSQL's triggers write batches: elsewhere, no query.
    """
    from crossdb.models import CapturedDeletion

    connection = connections[using]
    if connection.vendor != "postgresql":
        return 0
    table = connection.ops.quote_name(CapturedDeletion._meta.db_table)
    only = " AND link = ANY(%s)" if links is not None else ""
    params: list[Any] = [BATCH, after, *([list(links)] if links is not None else [])]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH batch AS (DELETE FROM {table} WHERE id IN ("
            f"SELECT id FROM {table} WHERE kind = %s AND id > %s{only} "
            f"ORDER BY id FOR UPDATE SKIP LOCKED) "
            f"RETURNING id, link, target_key, created_at) "
            f"INSERT INTO {table} ({QUEUE_COLUMNS}) "
            f"SELECT b.link, k.key, 'delete', b.created_at, '', 0, '' FROM batch b "
            f"CROSS JOIN LATERAL json_array_elements_text(b.target_key::json) "
            f"WITH ORDINALITY AS k(key, n) ORDER BY b.id, k.n",
            params,
        )
        return int(cursor.rowcount)


def key_count(using: str) -> Any:
    """
    An aggregate counting the deleted keys of ``CapturedDeletion`` rows of kind
    ``delete`` or ``batch`` in ``using``: one per row, a batch's own number on
    PostgreSQL (the only database whose triggers write batches).
    """
    if connections[using].vendor != "postgresql":
        return Count("pk")
    keys = Func(
        Cast("target_key", JSONField()), function="jsonb_array_length", output_field=IntegerField()
    )
    return Sum(Case(When(kind=BATCH, then=keys), default=Value(1)))


def batch_keys(target_key: str) -> list[str]:
    """The keys of a ``batch`` row, as texts."""
    keys = json.loads(target_key)
    if not isinstance(keys, list):
        raise ValueError(f"A batch row's target_key is not a JSON array: {target_key[:100]!r}")
    return [str(key) for key in keys]


def claim_new(using: str, fields: list[CrossDBForeignKey], after: int, token: str) -> list[Any]:
    """
    Claim the unclaimed delete rows after id ``after`` of ``fields``' links, inside
    the deleting transaction (its trigger's batches expanded first); return the
    fields for which there were none.
    """
    from crossdb.capture import link_label

    expand_batches(using, after, [link_label(field) for field in fields])
    unclaimed = queue(using).filter(kind="delete", pk__gt=after, claim_token="")
    return [
        field
        for field in fields
        if not unclaimed.filter(link=link_label(field)).update(
            claim_token=token, claimed_until=propagation._lease_end()
        )
    ]


def propagate_captured(alias: str, older_than: timedelta | None, result: PropagationResult) -> None:
    """Claim and apply the captured deletions stored in ``alias`` that nobody holds."""
    expand_batches(alias)
    rows = queue(alias).filter(kind="delete")
    if older_than:
        cutoff = timezone.now() - older_than
        result.skipped_young += rows.filter(created_at__gt=cutoff).count()
        rows = rows.filter(created_at__lte=cutoff)
    for token, ids, _seen in propagation.claim_batches(rows, CAPTURE_BATCH, result):
        if token is not None:
            apply_claimed(alias, token, result, span=(ids[0], ids[-1]))


# Applying ------------------------------------------------------------------------------------


def after_commit(
    using: str,
    token: str,
    group: str,
    lifted: frozenset[RowKey],
    deferred: bool = False,
    span: tuple[int, int] | None = None,
) -> None:
    try:
        result = propagation.PropagationResult()
        apply_claimed(using, token, result, group, lifted, deferred, span)
    except Exception:
        logger.exception(
            "Propagating captured deletions from database %r failed; the rows stay for "
            "`manage.py propagate_deletions`.",
            using,
        )


def apply_claimed(
    using: str,
    token: str,
    result: PropagationResult,
    group: str = "",
    lifted: frozenset[RowKey] = frozenset(),
    deferred: bool = False,
    span: tuple[int, int] | None = None,
) -> PropagationResult:
    """
    Apply the rows of ``using`` that ``token`` claims, a batch and a link at a time;
    ``span``, the lowest and highest id claimed, if known.
    """
    from crossdb.capture import field_for

    mine = queue(using).filter(claim_token=token)
    if span is not None:
        # claim_token has no index (the triggers would pay for it on every deleted row):
        # without the primary key's range each batch would read the whole queue.
        mine = mine.filter(pk__range=span)
    mine.update(claimed_until=propagation._lease_end())
    last = 0
    while True:
        batch = list(
            mine.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "link", "target_key")[:CAPTURE_BATCH]
        )
        if not batch:
            return result
        last = batch[-1][0]
        by_link: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for pk, link, key in batch:
            by_link[link].append((pk, key))
        for link, rows in by_link.items():
            try:
                field = field_for(link)
                source_db = routers.source_db_for_write(field)
            except Exception as exc:
                _fail(using, token, [pk for pk, _key in rows], f"{type(exc).__name__}: {exc}")
                result.failed += len(rows)
                result.errors.append(f"{link}: {type(exc).__name__}: {exc}")
                continue
            if not deferred and connections[source_db].in_atomic_block:
                callback = partial(after_commit, using, token, group, lifted, True, span)
                transaction.on_commit(callback, using=source_db)
                return result
            _apply_link(
                using, source_db, field, rows, token, group or uuid.uuid4().hex, lifted, result
            )


def _apply_link(
    using: str,
    source_db: str,
    field: CrossDBForeignKey,
    rows: list[tuple[int, str]],
    token: str,
    group: str,
    lifted: frozenset[RowKey],
    result: PropagationResult,
) -> None:
    label = f"{field.model._meta.label}.{field.name}"
    ids = [pk for pk, _key in rows]
    try:
        plan = propagation._Plan.for_keys(
            field, [key for _pk, key in rows], using, source_db, group, lifted
        )
    except Exception as exc:
        _fail(using, token, ids, f"{type(exc).__name__}: {exc}")
        result.failed += len(ids)
        result.errors.append(f"{label}: {type(exc).__name__}: {exc}")
        return
    try:
        with transaction.atomic(using=source_db):
            result.rows_changed += propagation._execute([plan], source_db)
        failed: dict[Any, str] = {}
    except propagation._CONNECTION_ERRORS as exc:
        failed = {None: f"{type(exc).__name__}: {exc}"}
    except Exception as exc:
        if len(rows) <= 1:
            failed = {None: f"{type(exc).__name__}: {exc}"}
        else:
            failed = propagation._apply_key_by_key(plan, source_db, result)
    if None in failed:
        _fail(using, token, ids, failed[None])
        result.failed += len(ids)
        result.errors.append(f"{label}: {failed[None]}")
        return
    to_python = field.target_field.to_python
    failed_ids = [pk for pk, key in rows if to_python(key) in failed]
    for key, error in failed.items():
        result.errors.append(f"{label}: key {key!r}: {error}")
        _fail(using, token, [pk for pk, k in rows if to_python(k) == key], error)
    result.failed += len(failed_ids)
    done = [pk for pk in ids if pk not in set(failed_ids)]
    _forget(using, done, token)
    result.applied += len(done)


def _fail(using: str, token: str, ids: list[int], error: str) -> None:
    logger.warning("Could not apply %d captured deletion(s): %s", len(ids), error)
    for chunk in chunks(ids, batch_size(using)):
        queue(using).filter(pk__in=chunk, claim_token=token).update(
            claim_token="",
            claimed_until=None,
            attempts=F("attempts") + 1,
            last_error=error[:10_000],
        )


def _forget(using: str, ids: list[int], token: str) -> None:
    """Delete applied rows in batches, without signals (the library's bookkeeping)."""
    connection = connections[using]
    qn = connection.ops.quote_name
    from crossdb.models import CapturedDeletion

    table = qn(CapturedDeletion._meta.db_table)
    for chunk in chunks(ids, batch_size(using, reserved=1)):
        marks = ", ".join(["%s"] * len(chunk))
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE {qn('claim_token')} = %s AND {qn('id')} IN ({marks})",
                [token, *chunk],
            )
