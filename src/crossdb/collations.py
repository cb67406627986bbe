"""
How a database compares the text of one column: its collation, and whether it is exact.

Only equality matters for keys. A collation is exact when two texts are equal
only if they are the same characters: PostgreSQL's deterministic collations,
SQLite's BINARY, MySQL's and MariaDB's binary NO PAD collations. Others treat
different keys as equal: ``'x1'``, ``'X1'`` and ``'x1 '`` under MariaDB's
utf8mb4_unicode_ci (case-insensitive, PAD SPACE), or ``'x1'`` and ``'x1 '``
under utf8mb4_bin (PAD SPACE).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connections


@dataclass(frozen=True)
class Collation:
    vendor: str
    name: str
    exact: bool

    def compares_like(self, other: Collation) -> bool:
        """Whether two columns find the same texts equal."""
        return (self.exact and other.exact) or self == other


def column_collation(alias: str, table: str, column: str) -> Collation | None:
    """The collation of ``table.column`` on ``alias``; None when it has none or is unknown."""
    connection = connections[alias]
    vendor = connection.vendor
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(
                "SELECT c.collname, c.collisdeterministic FROM pg_attribute a "
                "JOIN pg_collation c ON c.oid = a.attcollation "
                "WHERE a.attrelid = to_regclass(%s) AND a.attname = %s",
                [connection.ops.quote_name(table), column],
            )
            row = cursor.fetchone()
            return None if row is None else Collation(vendor, row[0], bool(row[1]))
        if vendor == "mysql":
            cursor.execute(
                "SELECT COLLATION_NAME FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND COLUMN_NAME = %s",
                [table, column],
            )
            row = cursor.fetchone()
            if row is None or row[0] is None:
                return None
            return Collation(vendor, row[0], _mysql_exact(cursor, connection, row[0]))
        if vendor == "sqlite":
            description = connection.introspection.get_table_description(cursor, table)
            declared = {info.name: info.collation for info in description}.get(column)
            name = (declared or "BINARY").upper()
            return Collation(vendor, name, name == "BINARY")
    return None


def _mysql_exact(cursor: Any, connection: Any, name: str) -> bool:
    """A binary collation that does not pad: MariaDB names it ``*_nopad_bin``."""
    if not name.endswith("_bin"):
        return False
    if getattr(connection, "mysql_is_mariadb", False):
        return "_nopad_" in name
    # MySQL 8 says whether a collation pads (utf8mb4_bin does, utf8mb4_0900_bin does not).
    cursor.execute(
        "SELECT PAD_ATTRIBUTE FROM information_schema.COLLATIONS WHERE COLLATION_NAME = %s",
        [name],
    )
    row = cursor.fetchone()
    return row is not None and row[0] == "NO PAD"
