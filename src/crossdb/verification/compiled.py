"""
Queries compiled once and executed many times with new values in their open
parameters: a scan of a million rows runs hundreds of queries that differ only
in their bounds, and building each through the ORM would cost more than running it.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import Lookup, QuerySet


class Slot:
    """
    A parameter left open in a query compiled once (see ``CompiledQuery``):
    the lookups below emit it as is, and each execution puts a value in its place.
    """

    def __repr__(self) -> str:
        return "<crossdb.verification.compiled.Slot>"


class _SlotComparison(Lookup):
    """``column <operator> %s`` whose parameter is a ``Slot``, filled in at each execution."""

    operator = ""
    prepare_rhs = False

    def get_prep_lookup(self) -> Any:
        return self.rhs

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} {self.operator} %s", (*lhs_params, self.rhs)


class AfterSlot(_SlotComparison):
    lookup_name = "crossdb_after_slot"
    operator = ">"


class FromSlot(_SlotComparison):
    lookup_name = "crossdb_from_slot"
    operator = ">="


class UpToSlot(_SlotComparison):
    lookup_name = "crossdb_up_to_slot"
    operator = "<="


class CompiledQuery:
    """
    A query compiled once and executed many times with new values in its
    ``Slot`` parameters: a scan of a million rows runs hundreds of queries that
    differ only in their bounds, and building each through the ORM would cost
    more than running it. Rows come back as the database sends them, with the
    selected fields' converters applied (none for integer keys).

    Runs through Django's cursor wrapper, so execute_wrapper(), query logging
    and CaptureQueriesContext see every execution.
    """

    def __init__(self, queryset: QuerySet[Any], *slots: Slot, converted: int | None = None) -> None:
        self.alias = queryset.db
        compiler = queryset.query.get_compiler(using=self.alias)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:
            self.sql: str | None = None
            return
        self.sql = sql
        self.params = list(params)
        self.positions = [
            next(i for i, param in enumerate(self.params) if param is slot) for slot in slots
        ]
        self.compiler = compiler
        # Only the first ``converted`` columns need Python values (a COUNT(*) is an int).
        columns = [column for column, _sql, _alias in compiler.select][:converted]
        self.converters = compiler.get_converters(columns)

    def execute(self, *values: Any) -> list[Any]:
        if self.sql is None:
            return []
        return self.fetch(connections[self.alias].cursor(), *values)

    def fetch(self, cursor: Any, *values: Any) -> list[Any]:
        """
        Execute on ``cursor`` (a cursor of this query's database, which it closes).
        The cursor may come from another thread: Django checks which thread uses
        a connection when a cursor is made, not when it runs.
        """
        with cursor:
            if self.sql is None:
                return []
            params = list(self.params)
            for position, value in zip(self.positions, values, strict=True):
                params[position] = value
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        if self.converters:
            rows = [tuple(row) for row in self.compiler.apply_converters(rows, self.converters)]
        return list(rows)
