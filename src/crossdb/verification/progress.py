"""
Progress of a long scan on stderr: rows done of an estimate read from the
planner's statistics (never a ``COUNT(*)``, which would read the table once
more), the rate and the time left. tqdm draws it when installed (the
``progress`` extra); else a plain line.
"""

from __future__ import annotations

import re
import time
from typing import Any, TextIO

from django.db import DatabaseError, connections
from django.db.models import Model


def estimated_rows(model: type[Model], alias: str) -> int | None:
    """
    The planner's estimate of ``model``'s rows on ``alias``, None if it has none:
    ``pg_class.reltuples`` (PostgreSQL), ``information_schema.TABLES.TABLE_ROWS``
    (MySQL, MariaDB), ``sqlite_stat1`` after an ``ANALYZE``, else the largest
    rowid (SQLite).
    """
    connection = connections[alias]
    table = model._meta.db_table
    quoted = connection.ops.quote_name(table)
    queries = {
        "postgresql": [("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [table])],
        "mysql": [
            (
                "SELECT TABLE_ROWS FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
                [table],
            )
        ],
        "sqlite": [
            ("SELECT stat FROM sqlite_stat1 WHERE tbl = %s ORDER BY idx IS NOT NULL", [table]),
            (f"SELECT max(rowid) FROM {quoted}", []),
        ],
    }
    for sql, params in queries.get(connection.vendor, []):
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                row = cursor.fetchone()
        except DatabaseError:  # no sqlite_stat1 before a first ANALYZE; a WITHOUT ROWID table
            continue
        found = re.match(r"\s*(-?\d+)", str(row[0])) if row and row[0] is not None else None
        if found and int(found.group(1)) >= 0:  # PostgreSQL 14+: -1 when never analyzed
            return int(found.group(1))
    return None


class Progress:
    """``update(done)`` as the scan goes, ``close()`` at its end."""

    def __init__(self, label: str, total: int | None, stream: TextIO) -> None:
        self.label, self.total, self.stream = label, total, stream
        self.started = self.shown = time.monotonic()
        self.done = 0
        self.bar: Any = None
        try:
            from tqdm import tqdm
        except ImportError:
            self.terminal = stream.isatty()
        else:
            self.bar = tqdm(
                total=total, desc=label, unit=" rows", unit_scale=True, file=stream, leave=True
            )

    def update(self, done: int) -> None:
        if self.bar is not None:
            self.bar.update(done - self.done)
        elif time.monotonic() - self.shown >= (0.5 if self.terminal else 10):
            self._show(done, "\r" if self.terminal else "", "" if self.terminal else "\n")
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            self._show(self.done, "\r" if self.terminal else "", "\n")

    def _show(self, done: int, start: str, end: str) -> None:
        self.shown = now = time.monotonic()
        rate = done / max(now - self.started, 1e-6)
        line = f"{self.label}: {done:,}"
        if self.total:
            eta = max(self.total - done, 0) / rate if rate else 0
            line += f" of ~{self.total:,} rows ({done / self.total:.0%})"
            line += f", {rate:,.0f} rows/s, ETA {int(eta) // 60}:{int(eta) % 60:02d}"
        else:
            line += f" rows, {rate:,.0f} rows/s"
        self.stream.write(f"{start}{line}{end}")
        self.stream.flush()
