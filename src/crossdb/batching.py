"""
Splitting key lists so that no query exceeds its backend's parameter limit.

SQLite refuses more than SQLITE_LIMIT_VARIABLE_NUMBER parameters (32,766 by
default), PostgreSQL with server-side binding 65,535, Oracle 1,000 items per
IN list. Django's own prefetch sends every key in one query and fails past
those limits; everything here sends one query per database per chunk.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from abc import ABCMeta, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import AutoField, F, IntegerField, Lookup, Model, QuerySet

from crossdb.conf import crossdb_settings

# Room left for parameters of a query whose own filters were not counted.
_PARAMS_RESERVED = 100


def batch_size(alias: str, reserved: int = _PARAMS_RESERVED) -> int | None:
    """How many keys one ``IN`` list may hold on ``alias``; None means no limit."""
    connection = connections[alias]
    limits = [
        limit
        for limit in (_max_query_params(connection), connection.ops.max_in_list_size())
        if limit
    ]
    size = min(limits) - reserved if limits else None
    configured = crossdb_settings.PREFETCH_BATCH_SIZE
    if configured:
        size = configured if size is None else min(size, configured)
    return None if size is None else max(1, size)


def _max_query_params(connection: Any) -> int | None:
    variable_limit = getattr(sqlite3, "SQLITE_LIMIT_VARIABLE_NUMBER", None)
    if connection.vendor == "sqlite" and variable_limit is not None:
        # Django 5.2 assumes 999; ask SQLite (Python 3.11+) for this connection's real limit.
        connection.ensure_connection()
        return int(connection.connection.getlimit(variable_limit))
    limit = connection.features.max_query_params
    return None if limit is None else int(limit)


def chunks(keys: Sequence[Any], size: int | None) -> Iterator[Sequence[Any]]:
    if size is None or len(keys) <= size:
        yield keys
        return
    for start in range(0, len(keys), size):
        yield keys[start : start + size]


def own_params(queryset: QuerySet[Any]) -> int | None:
    """How many parameters ``queryset``'s own filters use; None if it matches nothing."""
    try:
        _sql, params = queryset.query.get_compiler(queryset.db).as_sql()
    except EmptyResultSet:
        return None
    return len(params)


# Dense integer keys are fetched by range when it brings back at most this many
# rows per key: an IN parameter costs about a third of building an extra instance.
DENSE_SPAN = 1.25


def fetch_by_keys(
    queryset: QuerySet[Any],
    key_field: str,
    keys: Sequence[Any],
    *,
    integer: bool = False,
    matched_by_caller: bool = False,
) -> list[Model]:
    """
    Rows of ``queryset`` whose ``key_field`` is in ``keys``: one query per chunk,
    or one range query when ``integer`` keys are dense. With ``matched_by_caller``
    a range query's rows whose key was not asked for are left in (the caller
    looks each row up by key anyway): a set and an attribute read per row less.
    """
    reserved = own_params(queryset)
    if reserved is None or not keys:
        return []
    if integer:
        low, high = min(keys), max(keys)
        if high - low + 1 <= DENSE_SPAN * len(keys):
            in_range = queryset.filter(**{f"{key_field}__gte": low, f"{key_field}__lte": high})
            if matched_by_caller:
                return list(in_range)
            wanted = set(keys)
            return [row for row in in_range if getattr(row, key_field) in wanted]
    rows: list[Model] = []
    for chunk_queryset in by_keys(queryset, key_field, keys, reserved):
        rows.extend(chunk_queryset)
    return rows


class KeysParameter(Lookup, metaclass=ABCMeta):
    """A lookup that sends any number of keys as one parameter."""

    prepare_rhs = False

    def get_prep_lookup(self) -> Any:
        return self.rhs

    @classmethod
    @abstractmethod
    def parameter(cls, keys: Sequence[Any], field: Any, connection: Any) -> Any:
        """The one parameter carrying ``keys`` of ``field`` (each backend has its form)."""

    def rhs_parameter(self, connection: Any) -> Any:
        """
        The parameter for ``rhs``: a list of keys, or a placeholder left as is for a
        query compiled once and run with new keys (``crossdb.verification.compiled``).
        """
        if not isinstance(self.rhs, (list, tuple)):
            return self.rhs
        return self.parameter(self.rhs, self.lhs.output_field, connection)


def is_integer(field: Any) -> bool:
    """Whether ``field``'s values are integers (ranges and array literals apply)."""
    return isinstance(field, (IntegerField, AutoField))


class EqualsAny(KeysParameter):
    """``column = ANY(%s)`` with the keys as one array parameter (PostgreSQL)."""

    lookup_name = "crossdb_equals_any"

    @classmethod
    def parameter(cls, keys: Sequence[Any], field: Any, connection: Any) -> Any:
        if is_integer(field):
            # An array literal: psycopg would quote a list of ints one by one in
            # Python (a quarter of a sparse verify_links run on PostgreSQL).
            return "{" + ",".join(map(str, map(int, keys))) + "}"
        # psycopg adapts a list of Python values to an array of the right type.
        return list(keys)

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        cast = "::bigint[]" if is_integer(self.lhs.output_field) else ""
        return f"{lhs} = ANY(%s{cast})", (*lhs_params, self.rhs_parameter(connection))


class InJSONArray(KeysParameter):
    """
    ``column IN (SELECT value FROM json_each(%s))`` with the keys as one JSON
    array (SQLite), which binds and parses far faster than thousands of ``?``.
    """

    lookup_name = "crossdb_in_json_array"

    @classmethod
    def parameter(cls, keys: Sequence[Any], field: Any, connection: Any) -> Any:
        if is_integer(field):
            # Integers need no preparing: a third of an incremental verify_links run's time.
            return json.dumps(list(map(int, keys)))
        prepared = [field.get_db_prep_value(key, connection) for key in keys]
        return json.dumps(prepared)

    @classmethod
    def accepts(cls, keys: Sequence[Any]) -> bool:
        """
        Whether JSON carries every key exactly. It gives back integers and text as
        SQLite stores them, but json_each() ends a text at its first NUL character
        ("k\\x00ey" would be looked up as "k"); such keys, and anything else (bytes,
        decimals, dates), go through an IN list with Django's adapters.
        """
        kinds = set(map(type, keys))
        if not kinds <= {int, str, uuid.UUID}:
            return False
        return str not in kinds or not any("\x00" in key for key in keys if type(key) is str)

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        sql = f"{lhs} IN (SELECT value FROM json_each(%s))"
        return sql, (*lhs_params, self.rhs_parameter(connection))


def keys_lookup(alias: str) -> type[KeysParameter] | None:
    """The one-parameter lookup for a list of keys on ``alias``, if it has one."""
    connection = connections[alias]
    if connection.vendor == "postgresql":
        return EqualsAny
    # json_each() is built into SQLite from 3.38 (features.supports_json_field
    # would answer by running a query, which shows up in every query count).
    if connection.vendor == "sqlite" and sqlite3.sqlite_version_info >= (3, 38):
        return InJSONArray
    return None


def storable_keys(keys: Sequence[Any], alias: str) -> Sequence[Any]:
    """
    ``keys`` without those no row of ``alias`` can hold: PostgreSQL stores no NUL
    character in text (and refuses to bind one), so such a key has no row there.
    """
    if connections[alias].vendor != "postgresql" or not any(
        type(key) is str and "\x00" in key for key in keys
    ):
        return keys
    return [key for key in keys if not (type(key) is str and "\x00" in key)]


def by_keys(
    queryset: QuerySet[Any], key_field: str, keys: Sequence[Any], reserved: int = _PARAMS_RESERVED
) -> Iterator[QuerySet[Any]]:
    """
    ``queryset`` filtered to ``keys``: one queryset with all keys as a single
    parameter where the backend allows it (``= ANY(array)`` on PostgreSQL, whose
    driver otherwise re-parses every long ``IN`` list in Python; a JSON array on
    SQLite, for keys JSON carries exactly), else one queryset per chunk of an
    ``IN`` list.
    """
    keys = storable_keys(keys, queryset.db)
    if not keys:
        return
    lookup = keys_lookup(queryset.db)
    if lookup is InJSONArray and not InJSONArray.accepts(keys):
        lookup = None
    if lookup is not None:
        # One parameter whatever the length; CROSSDB_PREFETCH_BATCH_SIZE still caps it.
        for chunk in chunks(keys, crossdb_settings.PREFETCH_BATCH_SIZE):
            yield queryset.filter(lookup(F(key_field), list(chunk)))
        return
    for chunk in chunks(keys, batch_size(queryset.db, reserved)):
        yield queryset.filter(**{f"{key_field}__in": chunk})
