"""
Prefetching a relation across databases, against Django's own relations in one database.

For each size N: N sources, each pointing at a distinct target. Measured in
the same process on the same data, interleaved:

  A   Source.objects.prefetch_cross_db("user"), touching every .user
      (CrossDBForeignKey: Source in 'source', Target in 'default')
  B   SameSource.objects.prefetch_related("user"), touching every .user
      (models.ForeignKey, both tables in 'same')
  C   SameSource.objects.select_related("user"), touching every .user (one join: the floor)
  A0  list(Source.objects.all()) and B0 list(SameSource.objects.all()): loading the
      sources alone, to show what the two databases cost before any relation
  D   reading .user on N already loaded instances, cross-database vs Django's ForeignKey

Then, at 100,000 rows, the "limits" section: backends that cap the number of
query parameters (SQLite; PostgreSQL with server-side binding).

Targets: A/B <= 0.6, A/C <= 1.5, D ratio <= 1.10. Always exits 0 unless something crashes.
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(_ROOT), str(_ROOT / "src")]

from benchmarks import common  # noqa: E402

TARGETS = {"A/B": 0.6, "A/C": 1.5, "D": 1.10}
LIMITS_SIZE = 100_000
SQLITE_DEFAULT_LIMIT = 32_766


def touch(rows: list) -> list:
    for row in rows:
        _ = row.user
    return rows


def variants() -> list:
    m = common.models()

    def a() -> list:
        return touch(list(m.Source.objects.prefetch_cross_db("user")))

    def b() -> list:
        return touch(list(m.SameSource.objects.prefetch_related("user")))

    def c() -> list:
        return touch(list(m.SameSource.objects.select_related("user")))

    def a0() -> list:
        return list(m.Source.objects.all())

    def b0() -> list:
        return list(m.SameSource.objects.all())

    def check(rows: list) -> None:
        assert rows and all(row.user.id == row.user_id for row in rows), "wrong targets"

    return [
        common.Variant("A", "cross-db prefetch_cross_db('user')", a, check=check),
        common.Variant("B", "same-db prefetch_related('user')", b, check=check),
        common.Variant("C", "same-db select_related('user')", c, check=check),
        common.Variant("A0", "cross-db sources only (no .user)", a0),
        common.Variant("B0", "same-db sources only (no .user)", b0),
    ]


def cached_access(n: int, repeat: int) -> tuple[float, float]:
    """Median seconds to read .user on all n loaded instances: (cross-db, Django FK)."""
    import time

    m = common.models()
    cross = touch(list(m.Source.objects.prefetch_cross_db("user")))
    same = touch(list(m.SameSource.objects.prefetch_related("user")))
    loops = max(1, 1_000_000 // n)

    def one(rows: list) -> float:
        began = time.perf_counter()
        for _ in range(loops):
            touch(rows)
        return (time.perf_counter() - began) / loops

    cross_times, same_times = [], []
    for _ in range(max(repeat, 5)):
        cross_times.append(one(cross))
        same_times.append(one(same))
    return common.median(cross_times), common.median(same_times)


def bench_size(n: int, repeat: int, aliases: list[str]) -> dict:
    print(f"## {n:,} rows")
    common.load_cross(n)
    common.load_same(n)
    vs = variants()
    for v in vs:  # warm-up: connections, statement caches, imports
        v.run()
    queries = {v.key: common.describe_queries(common.capture_queries(v.run, aliases)) for v in vs}
    times = common.time_variants(vs, repeat)
    memory = {v.key: common.peak_memory(v.run) for v in vs}
    notes = {v.key: [f"{common.mib(memory[v.key]):>9}", queries[v.key]] for v in vs}
    med = common.print_times(vs, times, notes, "peak mem  queries of one run, per database")
    cross, same = cached_access(n, repeat)
    print(
        f"D   cached .user on {n:,} loaded rows: cross-db {common.ms(cross)} "
        f"({cross / n * 1e9:.0f} ns/row), Django FK {common.ms(same)} ({same / n * 1e9:.0f} ns/row)"
    )
    ratios = {"A/B": med["A"] / med["B"], "A/C": med["A"] / med["C"], "D": cross / same}
    for name, value in ratios.items():
        common.verdict(f"{name} at {n:,} rows", value, TARGETS[name])
    print()
    return {"n": n, **med, **ratios}


def _attempt(title: str, run, aliases: list[str]) -> None:
    try:
        queries = common.capture_queries(run, aliases)
    except Exception as exc:
        print(f"  FAILS     {title}\n            {common.exception_summary(exc)}")
    else:
        print(f"  succeeds  {title}\n            queries: {common.describe_queries(queries)}")


def limits(loaded: int | None) -> None:
    import sqlite3

    from django.conf import settings
    from django.db import connections
    from django.db.models import Prefetch

    from crossdb.batching import batch_size

    m = common.models()
    n = LIMITS_SIZE
    print(f"## limits at {n:,} rows: backends that cap the parameters of one query")
    if loaded != n:
        common.load_cross(n)
        common.load_same(n)

    def cross(alias: str | None = None):
        lookup = "user" if alias is None else Prefetch("user", Target.objects.using(alias))

        def run() -> None:
            rows = touch(list(m.Source.objects.prefetch_cross_db(lookup)))
            assert len(rows) == n and all(r.user.id == r.user_id for r in rows)

        return run

    def same(alias: str):
        def run() -> None:
            lookup = Prefetch("user", m.SameTarget.objects.using(alias))
            rows = touch(list(m.SameSource.objects.using(alias).prefetch_related(lookup)))
            assert len(rows) == n and all(r.user.id == r.user_id for r in rows)

        return run

    Target = m.Target
    if settings.TOPOLOGY == "sqlite" and not hasattr(sqlite3.Connection, "getlimit"):
        print("  skipped: sqlite3.Connection.getlimit() needs Python 3.11 or later")
    elif settings.TOPOLOGY == "sqlite":
        # Debian's and Ubuntu's SQLite are built with a limit of 250,000; stock
        # SQLite's default is 32,766, and Django's docs let you lower it per connection.
        for limit in (None, SQLITE_DEFAULT_LIMIT):
            for alias in ("default", "same"):
                connection = connections[alias]
                # A new connection: sqlite3 reuses a statement prepared under the old limit.
                connection.close()
                connection.ensure_connection()
                if limit is not None:
                    connection.connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
                actual = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
                how = "as built" if limit is None else "lowered with setlimit()"
                print(
                    f"  {alias}: SQLITE_LIMIT_VARIABLE_NUMBER = {actual} ({how}; stock "
                    f"SQLite: {SQLITE_DEFAULT_LIMIT}); crossdb batch_size = {batch_size(alias)}"
                )
            _attempt(f"A cross-db prefetch, {n:,} keys, 'default'", cross(), ["source", "default"])
            _attempt(f"B Django prefetch_related, {n:,} keys, 'same'", same("same"), ["same"])
    else:
        for alias in ("default", "pg_ssb"):
            features = connections[alias].features
            print(
                f"  {alias}: server_side_binding = {features.uses_server_side_binding}, "
                f"max_query_params = {features.max_query_params}, "
                f"crossdb batch_size = {batch_size(alias)}"
            )
        _attempt(f"A cross-db prefetch, {n:,} keys, 'default'", cross(), ["source", "default"])
        _attempt(
            f"A cross-db prefetch, {n:,} keys, 'pg_ssb'", cross("pg_ssb"), ["source", "pg_ssb"]
        )
        _attempt(f"B Django prefetch_related, {n:,} keys, 'same'", same("same"), ["same"])
        _attempt(f"B Django prefetch_related, {n:,} keys, 'pg_ssb'", same("pg_ssb"), ["pg_ssb"])
    print()


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--sizes", type=common.int_list, default=[10_000, 100_000])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--no-limits", action="store_true", help="skip the limits section")
    args = p.parse_args()
    common.start(args, "bench_prefetch")
    from django.conf import settings

    aliases = list(settings.DATABASES)
    print(f"repeat: {args.repeat} interleaved runs per variant, median reported\n")
    results = [bench_size(n, args.repeat, aliases) for n in args.sizes]
    if not args.no_limits:
        limits(args.sizes[-1] if args.sizes else None)
    if args.profile:
        m = common.models()
        n = args.sizes[-1]
        common.load_cross(n)
        common.load_same(n)
        common.print_profile(
            lambda: touch(list(m.Source.objects.prefetch_cross_db("user"))), f"A at {n:,} rows"
        )
        common.print_profile(
            lambda: touch(list(m.SameSource.objects.prefetch_related("user"))), f"B at {n:,} rows"
        )
    common.heading("summary")
    print(f"{'rows':>9}{'A':>12}{'B':>12}{'C':>12}{'A/B':>7}{'A/C':>7}{'D':>7}")
    for r in results:
        print(
            f"{r['n']:>9,}{common.ms(r['A']):>12}{common.ms(r['B']):>12}{common.ms(r['C']):>12}"
            f"{r['A/B']:>7.2f}{r['A/C']:>7.2f}{r['D']:>7.2f}"
        )
    print(f"targets: A/B <= {TARGETS['A/B']}, A/C <= {TARGETS['A/C']}, D <= {TARGETS['D']}")
    common.finish()


if __name__ == "__main__":
    main()
