"""
bench_capture.py on PostgreSQL: the floor of any capture trigger.

A scratch table (``bench_capture_floor``, created and dropped here, in the database
of ``default``), a copy of the twin's columns, measures what the library cannot go
below:

  N   a DELETE of N rows whose statement-level trigger declares the transition table
      (REFERENCING OLD TABLE), counts its rows and writes nothing: the cost of a
      trigger that sees the deleted keys, before it stores one
"""

from __future__ import annotations

from typing import Any

from benchmarks import common

FLOOR = "bench_capture_floor"


def _sql(*statements: str) -> Any:
    from django.db import connections

    with connections["default"].cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
        return cursor.rowcount


def create(twin: str) -> None:
    drop()
    _sql(
        f"CREATE TABLE {FLOOR} (LIKE {twin} INCLUDING ALL)",
        f"CREATE FUNCTION {FLOOR}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"DECLARE seen bigint;\nBEGIN\n  SELECT count(*) INTO seen FROM old_rows;\n"
        f"  RETURN NULL;\nEND\n$$",
        f"CREATE TRIGGER {FLOOR} AFTER DELETE ON {FLOOR} REFERENCING OLD TABLE AS old_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {FLOOR}()",
    )


def drop() -> None:
    _sql(f"DROP TABLE IF EXISTS {FLOOR}", f"DROP FUNCTION IF EXISTS {FLOOR}()")


def variants(n: int) -> list[common.Variant]:
    def load_floor() -> None:
        _sql(
            f"TRUNCATE {FLOOR}",
            f"INSERT INTO {FLOOR} (id, name) SELECT g, 'row ' || g FROM generate_series(1, {n}) g",
            f"ANALYZE {FLOOR}",
        )

    def delete_floor() -> int:
        return int(_sql(f"DELETE FROM {FLOOR} WHERE id BETWEEN 1 AND {n}"))

    def check(rows: int) -> None:
        assert rows == n, f"N deleted {rows} rows, not {n}"

    return [common.Variant("N", "DELETE, trigger storing nothing", delete_floor, load_floor, check)]
