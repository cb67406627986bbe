"""
Splitting key lists so that no query exceeds its backend's parameter limit.

SQLite refuses more than SQLITE_LIMIT_VARIABLE_NUMBER parameters (32,766 by
default), PostgreSQL with server-side binding 65,535, Oracle 1,000 items per
IN list. Django's own prefetch sends every key in one query and fails past
those limits; everything here sends one query per database per chunk.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from django.db import connections
from django.db.models import Model, QuerySet

from crossdb.conf import crossdb_settings

# Room left for the parameters a caller's own filters add to the query.
_PARAMS_RESERVED = 100


def batch_size(alias: str, reserved: int = _PARAMS_RESERVED) -> int | None:
    """How many keys one ``IN`` list may hold on ``alias``; None means no limit."""
    connection = connections[alias]
    limits = [
        limit
        for limit in (connection.features.max_query_params, connection.ops.max_in_list_size())
        if limit
    ]
    configured = crossdb_settings.PREFETCH_BATCH_SIZE
    if configured:
        limits.append(configured + reserved)
    if not limits:
        return None
    return max(1, min(limits) - reserved)


def chunks(keys: Sequence[Any], size: int | None) -> Iterator[Sequence[Any]]:
    if size is None or len(keys) <= size:
        yield keys
        return
    for start in range(0, len(keys), size):
        yield keys[start : start + size]


def fetch_by_keys(queryset: QuerySet[Any], key_field: str, keys: Sequence[Any]) -> list[Model]:
    """Rows of ``queryset`` whose ``key_field`` is in ``keys``: one query per chunk."""
    rows: list[Model] = []
    lookup = f"{key_field}__in"
    for chunk in chunks(keys, batch_size(queryset.db)):
        rows.extend(queryset.filter(**{lookup: chunk}))
    return rows
