"""
Deletions captured by triggers (capture_deletes=True): what the triggers add to a
bulk DELETE, and what applying the captured deletions costs.

delete: for each database holding a captured target table (SQLite on the sqlite
topology; PostgreSQL and MariaDB on the real one), N rows loaded before each run
(not timed), then one statement, DELETE FROM <table> WHERE id BETWEEN 1 AND N, in
autocommit (its commit is timed too):

  P  the twin table: the same columns, no trigger
  C  the captured table: its trigger writes the N keys into crossdb_captureddeletion
     (PostgreSQL: one batch row per statement; MariaDB and SQLite: a row per key)
  Q  no delete: N queue rows, one per key, written by one INSERT ... SELECT: the
     cost of writing them alone (what a trigger writing a row per key cannot go below)
  N  PostgreSQL only (capture_pg.py): a statement-level trigger that reads its
     transition table and stores nothing, the floor of any capture trigger there

Target C/P <= 1.3 on PostgreSQL (one statement-level trigger, one row of keys
per statement); MariaDB and SQLite have row-level triggers only, one INSERT per
deleted row, measured and published. Each C run checks that the queue holds
exactly N keys of its link, each P run that it holds none.

propagation: N targets with one reference each in the other database; the N
targets deleted with one DELETE (captured); then propagate_pending() on the
targets' database applies the N captured rows (SET_NULL for CaptureRef, CASCADE for
BackCaptureRef). Time, queries per database (and per 1,000 rows), tracemalloc's
peak. The queries must be bounded by batches: on every database at most
QUERIES_PER_BATCH per CAPTURE_BATCH rows plus QUERIES_FIXED, at N and at N/2.

Always exits 0 unless something crashes (a failed check is a crash).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(_ROOT), str(_ROOT / "src")]

from benchmarks import capture_pg, common  # noqa: E402
from benchmarks.series import insert_series  # noqa: E402

TARGET_RATIO = 1.3  # C/P on PostgreSQL
# Bounded by batches: per CAPTURE_BATCH (500) captured rows, at most this many queries on
# one database, plus a constant (the runner's selections, the empty last batch).
QUERIES_PER_BATCH = 12
QUERIES_FIXED = 20
# Reference i points at target ((i - 1) * PERMUTE) % N + 1: each target once, shuffled.
PERMUTE = 7919


@dataclass(frozen=True)
class Link:
    target: str  # model names in benchapp
    twin: str
    ref: str
    policy: str

    @property
    def label(self) -> str:
        return f"benchapp.{self.ref}.target"

    def model(self, role: str) -> Any:
        return getattr(common.models(), getattr(self, role))

    @property
    def alias(self) -> str:
        return common._alias(self.model("target"))

    @property
    def vendor(self) -> str:
        from django.db import connections

        return str(connections[self.alias].vendor)


LINKS = (
    Link("CaptureTarget", "CaptureTwin", "CaptureRef", "SET_NULL"),
    Link("BackCaptureTarget", "BackCaptureTwin", "BackCaptureRef", "CASCADE"),
)
VENDOR_NAMES = {"postgresql": "PostgreSQL", "mysql": "MariaDB", "sqlite": "SQLite"}


# SQL ------------------------------------------------------------------------


def run_sql(alias: str, sql: str, params: list[Any] | None = None) -> int:
    from django.db import connections

    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def table(model_class: Any) -> str:
    from django.db import connections

    return str(connections[common._alias(model_class)].ops.quote_name(model_class._meta.db_table))


def text_of(vendor: str, sql: str) -> str:
    return {"mysql": f"CAST({sql} AS CHAR)", "postgresql": f"{sql}::text"}.get(
        vendor, f"CAST({sql} AS TEXT)"
    )


def name_sql(vendor: str) -> str:
    # MariaDB's || is OR unless PIPES_AS_CONCAT.
    return "CONCAT('row ', g)" if vendor == "mysql" else "'row ' || g"


def load(model_class: Any, n: int, **columns: str) -> None:
    common.empty_tables(model_class)
    vendor = _vendor(model_class)
    insert_series(model_class, {"id": "g", "name": name_sql(vendor), **columns}, n)
    common.analyze(model_class)


def _vendor(model_class: Any) -> str:
    from django.db import connections

    return str(connections[common._alias(model_class)].vendor)


def queued(link: Link) -> int:
    """The keys queued for the link: a row each, or in PostgreSQL's batch rows."""
    from crossdb.capture_queue import BATCH, batch_keys
    from crossdb.models import CapturedDeletion

    rows = CapturedDeletion.objects.using(link.alias).filter(link=link.label)
    batches = rows.filter(kind=BATCH).values_list("target_key", flat=True)
    return rows.exclude(kind=BATCH).count() + sum(len(batch_keys(keys)) for keys in batches)


def delete_range(model_class: Any, n: int) -> int:
    """One bulk DELETE of ids 1..n; the rows it deleted."""
    return run_sql(
        common._alias(model_class),
        f"DELETE FROM {table(model_class)} WHERE id BETWEEN %s AND %s",
        [1, n],
    )


def queue_columns(link: Link) -> dict[str, str]:
    """The queue's columns and the SQL of what the trigger writes there for key g."""
    now = {
        "postgresql": "now()",
        "mysql": "UTC_TIMESTAMP(6)",
        "sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now')",
    }[link.vendor]
    return {
        "link": f"'{link.label}'",
        "target_key": text_of(link.vendor, "g"),
        "kind": "'delete'",
        "created_at": now,
        "claim_token": "''",
        "attempts": "0",
        "last_error": "''",
    }


def write_queue_rows(link: Link, n: int) -> None:
    """What the trigger writes for n keys, by one INSERT ... SELECT (no trigger, no delete)."""
    from crossdb.models import CapturedDeletion

    insert_series(CapturedDeletion, queue_columns(link), n, using=link.alias)


# The delete -----------------------------------------------------------------


def delete_variants(link: Link, n: int) -> list[common.Variant]:
    target, twin = link.model("target"), link.model("twin")

    def check_deleted(expected_queue: int) -> Callable[[int], None]:
        def check(deleted: int) -> None:
            assert deleted == n, f"{link.label}: the DELETE removed {deleted} rows, not {n}"
            found = queued(link)
            assert found == expected_queue, (
                f"{link.label}: {found} queue rows, not {expected_queue}"
            )

        return check

    def check_written(_result: None) -> None:
        assert queued(link) == n, f"{link.label}: Q wrote {queued(link)} queue rows, not {n}"

    def fresh(model_class: Any) -> Callable[[], None]:
        def setup() -> None:
            load(model_class, n)
            common.empty_queue(link.alias)

        return setup

    return [
        common.Variant(
            "P",
            "DELETE, no trigger (twin)",
            lambda: delete_range(twin, n),
            fresh(twin),
            check_deleted(0),
        ),
        common.Variant(
            "C",
            "DELETE, capture trigger",
            lambda: delete_range(target, n),
            fresh(target),
            check_deleted(n),
        ),
        common.Variant(
            "Q",
            "queue rows alone (INSERT..SELECT)",
            lambda: write_queue_rows(link, n),
            lambda: common.empty_queue(link.alias),
            check_written,
        ),
    ]


def measure_delete(link: Link, n: int, repeat: int) -> None:
    from django.db import connections

    from crossdb.capture_sql import TriggerSpec, installed_triggers

    name = VENDOR_NAMES.get(link.vendor, link.vendor)
    common.heading(
        f"delete: {n:,} rows of {link.target} ({name}, database '{link.alias}'), "
        f"one DELETE ... WHERE id BETWEEN 1 AND {n:,}"
    )
    field = link.model("ref")._meta.get_field("target")
    assert TriggerSpec.of(field).name in installed_triggers(connections[link.alias]), link
    print(f"load: {common.load_average()}")
    variants = delete_variants(link, n)
    floor = link.vendor == "postgresql"
    if floor:
        capture_pg.create(link.model("twin")._meta.db_table)
        variants += capture_pg.variants(n)
    try:
        times = common.time_variants(variants, repeat)
    finally:
        if floor:
            capture_pg.drop()
    notes = {v.key: [f"{common.median(times[v.key]) / n * 1e6:,.2f} us/row"] for v in variants}
    med = common.print_times(variants, times, notes, "per deleted row")
    ratio = med["C"] / med["P"]
    best = min(times["C"]) / min(times["P"])
    if link.vendor == "postgresql":
        common.verdict(
            f"C/P on {name} (medians; min/min of {repeat}: {best:.2f})", ratio, TARGET_RATIO
        )
    else:
        print(f"      C/P on {name} = {ratio:.2f} (min/min of {repeat}: {best:.2f}; no target)")
    extra = (med["C"] - med["P"]) / n * 1e6
    print(
        f"      the trigger adds {extra:,.2f} us per deleted row; a queue row per key, written "
        f"set-based (Q), costs {med['Q'] / n * 1e6:,.2f} us per row; keys queued per C run: {n:,}"
    )
    if floor:
        print(
            f"      floor: a statement-level trigger that reads its transition table and "
            f"stores nothing (N): N/P = {med['N'] / med['P']:.2f}; storing the keys as one "
            f"batch row adds C/N = {med['C'] / med['N']:.2f}"
        )
    common.empty_queue(link.alias)
    print()


# The propagation ------------------------------------------------------------


def prepare_propagation(link: Link, n: int) -> None:
    """n targets, n references in the other database, the targets deleted (captured)."""
    assert math.gcd(PERMUTE, n) == 1, f"--rows must not be a multiple of {PERMUTE}"
    target, ref = link.model("target"), link.model("ref")
    load(target, n)
    load(ref, n, target_id=f"((g - 1) * {PERMUTE}) % {n} + 1")
    common.empty_queue(link.alias)
    assert delete_range(target, n) == n
    assert queued(link) == n, f"{link.label}: {queued(link)} rows captured, not {n}"


def propagate(link: Link, n: int) -> Any:
    from crossdb.propagation import propagate_pending

    result = propagate_pending(using=[link.alias])
    assert (result.applied, result.failed) == (n, 0), (result.as_dict(), link)
    return result


def check_applied(link: Link, n: int) -> None:
    ref = link.model("ref")._base_manager
    assert queued(link) == 0, f"{link.label}: {queued(link)} captured rows left"
    if link.policy == "SET_NULL":
        left = ref.filter(target_id__isnull=False).count()
        assert left == 0 and ref.count() == n, f"{link.label}: {left} references not set to NULL"
    else:
        assert not ref.exists(), f"{link.label}: {ref.count()} references not deleted"


def bound(rows: int) -> int:
    from crossdb.capture_queue import CAPTURE_BATCH

    return QUERIES_PER_BATCH * math.ceil(rows / CAPTURE_BATCH) + QUERIES_FIXED


def measure_propagation(link: Link, n: int, repeat: int, profile: bool) -> None:
    from django.conf import settings

    from crossdb.capture_queue import CAPTURE_BATCH

    aliases = list(settings.DATABASES)
    name = VENDOR_NAMES.get(link.vendor, link.vendor)
    ref_alias = common._alias(link.model("ref"))
    common.heading(
        f"propagation: {n:,} captured deletions of {link.target} ({name}, '{link.alias}'), "
        f"{link.policy} on {n:,} {link.ref} rows in '{ref_alias}'"
    )
    print(f"load: {common.load_average()}")
    times = []
    for _ in range(repeat):
        prepare_propagation(link, n)
        began = time.perf_counter()
        propagate(link, n)
        times.append(time.perf_counter() - began)
        check_applied(link, n)
    queries, seconds = {}, {}
    for rows in (n // 2, n):
        prepare_propagation(link, rows)
        began = time.perf_counter()
        queries[rows] = common.capture_queries(partial(propagate, link, rows), aliases)
        seconds[rows] = time.perf_counter() - began
        check_applied(link, rows)
    prepare_propagation(link, n)
    peak = common.peak_memory(lambda: propagate(link, n))
    check_applied(link, n)
    med = common.median(times)
    print(
        f"time: median {common.ms(med)} of {repeat} (min {common.ms(min(times))}), "
        f"{n / med:,.0f} rows/s; tracemalloc peak {common.mib(peak)}"
    )
    for rows, per_alias in queries.items():
        print(f"queries at {rows:,} rows: {common.describe_queries(per_alias)}")
    half = n // 2
    print(
        f"scaling, runs with their queries captured: {common.ms(seconds[half])} at {half:,} "
        f"rows, {common.ms(seconds[n])} at {n:,} ({seconds[n] / seconds[half]:.2f} x)"
    )
    for alias in aliases:
        counts = {rows: len(queries[rows][alias]) for rows in queries}
        if not counts[n]:
            continue
        per_batch = (counts[n] - counts[half]) / max(1, (n - half) / CAPTURE_BATCH)
        ok = all(count <= bound(rows) for rows, count in counts.items())
        print(
            f"{'PASS' if ok else 'FAIL'}  '{alias}': {counts[n]:,} queries for {n:,} rows "
            f"({counts[n] / n * 1000:.1f} per 1,000 rows; {counts[half]:,} at {half:,}; "
            f"{per_batch:.1f} per {CAPTURE_BATCH} more rows); bound {bound(n):,} = "
            f"{QUERIES_PER_BATCH} x ceil(rows / {CAPTURE_BATCH}) + {QUERIES_FIXED}"
        )
        assert ok, f"'{alias}' sent more queries than the batches explain: {counts}"
    if profile:
        prepare_propagation(link, n)
        common.print_profile(lambda: propagate(link, n), f"propagation of {n:,} rows")
        check_applied(link, n)
    print()


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--rows", type=lambda s: int(s.replace("_", "")), default=100_000)
    p.add_argument("--repeat", type=int, default=5, help="runs of each delete variant")
    p.add_argument("--prop-repeat", type=int, default=2, help="timed propagation runs")
    p.add_argument(
        "--smoke", action="store_true", help="a quick check: 2,000 rows, one run of each"
    )
    args = p.parse_args()
    if args.smoke:
        args.rows, args.repeat, args.prop_repeat = 2_000, 1, 1
    common.start(args, "bench_capture")
    n = args.rows
    print("tables (bench_capture): CaptureTarget + CaptureTwin -> default, CaptureRef -> source")
    print("           (SET_NULL); BackCaptureTarget + BackCaptureTwin -> source, BackCaptureRef")
    print("           -> default (CASCADE); both links capture_deletes=True")
    print(f"rows: {n:,}; delete: {args.repeat} interleaved runs per variant, data reloaded first")
    print()
    seen: set[str] = set()
    for link in LINKS:
        if link.vendor not in seen:
            seen.add(link.vendor)
            measure_delete(link, n, args.repeat)
    for link in LINKS:
        measure_propagation(link, n, args.prop_repeat, args.profile and link is LINKS[0])
    common.finish()


if __name__ == "__main__":
    main()
