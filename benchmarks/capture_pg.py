"""
bench_capture.py on PostgreSQL: where the capture trigger's time goes.

Scratch tables (``bench_capture_*``, created and dropped here, in the database of
``default``) measure two things the library does not do:

  Q1  the queue rows of Q written into a copy of the queue table that has its
      primary key only (the queue has two more indexes: created_at, claimed_until)
  A   a DELETE of N rows whose statement-level trigger writes ONE row per statement,
      the deleted keys aggregated into an array (a queue of batches, not of keys)
  N   a DELETE of N rows whose statement-level trigger declares the transition table
      (REFERENCING OLD TABLE), counts its rows and writes nothing: the floor of any
      trigger that sees the deleted keys, before it stores one
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks import common

COPY = "bench_capture_queue_copy"
TWIN = "bench_capture_twin"
BATCHES = "bench_capture_batches"
FLOOR = "bench_capture_floor"


def _sql(*statements: str) -> Any:
    from django.db import connections

    with connections["default"].cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
        return cursor.rowcount


def create(queue: str, twin: str, link: str) -> None:
    drop()
    _sql(
        f"CREATE TABLE {COPY} (LIKE {queue} INCLUDING DEFAULTS INCLUDING IDENTITY)",
        f"ALTER TABLE {COPY} ADD PRIMARY KEY (id)",
        f"CREATE TABLE {TWIN} (LIKE {twin} INCLUDING ALL)",
        f"CREATE TABLE {BATCHES} (id bigserial PRIMARY KEY, link varchar(200) NOT NULL, "
        f"target_keys text[] NOT NULL, created_at timestamptz NOT NULL)",
        f"CREATE FUNCTION {BATCHES}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n  INSERT INTO {BATCHES} (link, target_keys, created_at)\n"
        f"  SELECT '{link}', array_agg(o.id::text), now() FROM old_rows o HAVING count(*) > 0;\n"
        f"  RETURN NULL;\nEND\n$$",
        f"CREATE TRIGGER {BATCHES} AFTER DELETE ON {TWIN} REFERENCING OLD TABLE AS old_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {BATCHES}()",
        f"CREATE TABLE {FLOOR} (LIKE {twin} INCLUDING ALL)",
        f"CREATE FUNCTION {FLOOR}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"DECLARE seen bigint;\nBEGIN\n  SELECT count(*) INTO seen FROM old_rows;\n"
        f"  RETURN NULL;\nEND\n$$",
        f"CREATE TRIGGER {FLOOR} AFTER DELETE ON {FLOOR} REFERENCING OLD TABLE AS old_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {FLOOR}()",
    )


def drop() -> None:
    _sql(
        f"DROP TABLE IF EXISTS {COPY}, {TWIN}, {BATCHES}, {FLOOR}",
        f"DROP FUNCTION IF EXISTS {BATCHES}()",
        f"DROP FUNCTION IF EXISTS {FLOOR}()",
    )


def variants(n: int, queue_columns: str, queue_values: str) -> list[common.Variant]:
    def write_copy() -> int:
        return int(
            _sql(
                f"INSERT INTO {COPY} ({queue_columns}) SELECT {queue_values} "
                f"FROM generate_series(1, {n}) AS s(g)"
            )
        )

    def load_twin() -> None:
        _sql(
            f"TRUNCATE {TWIN}, {BATCHES}",
            f"INSERT INTO {TWIN} (id, name) SELECT g, 'row ' || g FROM generate_series(1, {n}) g",
            f"ANALYZE {TWIN}",
        )

    def load_floor() -> None:
        _sql(
            f"TRUNCATE {FLOOR}",
            f"INSERT INTO {FLOOR} (id, name) SELECT g, 'row ' || g FROM generate_series(1, {n}) g",
            f"ANALYZE {FLOOR}",
        )

    def delete_twin() -> int:
        return int(_sql(f"DELETE FROM {TWIN} WHERE id BETWEEN 1 AND {n}"))

    def delete_floor() -> int:
        return int(_sql(f"DELETE FROM {FLOOR} WHERE id BETWEEN 1 AND {n}"))

    def expect(count: int, what: str) -> Callable[[int], None]:
        def check(rows: int) -> None:
            assert rows == count, f"{what}: {rows} rows, not {count}"

        return check

    def check_batches(rows: int) -> None:
        expect(n, "A deleted")(rows)
        keys = _count(f"SELECT sum(cardinality(target_keys)) FROM {BATCHES}")
        assert keys == n and _count(f"SELECT count(*) FROM {BATCHES}") == 1, keys

    return [
        common.Variant(
            "Q1",
            "queue rows, primary key only",
            write_copy,
            lambda: _sql(f"TRUNCATE {COPY}"),
            expect(n, "Q1 wrote"),
        ),
        common.Variant(
            "A", "DELETE, one row of keys per stmt", delete_twin, load_twin, check_batches
        ),
        common.Variant(
            "N", "DELETE, trigger storing nothing", delete_floor, load_floor, expect(n, "N deleted")
        ),
    ]


def _count(sql: str) -> int:
    from django.db import connections

    with connections["default"].cursor() as cursor:
        cursor.execute(sql)
        return int(cursor.fetchone()[0])
