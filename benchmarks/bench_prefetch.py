"""
Prefetching a relation across databases, against Django's own relations in one database.

For each key layout and size N: N sources, each pointing at a distinct target.
Measured in the same process on the same data, interleaved:

  A   Source.objects.prefetch_cross_db("user"), touching every .user
      (CrossDBForeignKey: Source in 'source', Target in 'default')
  B   SameSource.objects.prefetch_related("user"), touching every .user
      (models.ForeignKey, both tables in 'same')
  C   SameSource.objects.select_related("user"), touching every .user (one join: the floor)
  A0  list(Source.objects.all()) and B0 list(SameSource.objects.all()): loading the
      sources alone, to show what the two databases cost before any relation
  D   reading .user on N already loaded instances, cross-database vs Django's ForeignKey

Key layouts (--layouts): "dense", target ids 1..N; "sparse", target ids 3, 6, ..., 3N.
crossdb fetches dense integer keys with one range query (id >= lo AND id <= hi) and
others with IN lists, so the two layouts measure its two paths; Django's
prefetch_related and select_related do the same work in both. The sparse layout runs
A, B and C only (A0, B0 and D do not depend on the keys).

Then, at 100,000 rows and for each layout, the "limits" section: backends that cap the
number of query parameters (SQLite; PostgreSQL with server-side binding).

Targets: A/B <= 0.6, A/C <= 1.5, D ratio <= 1.10. Always exits 0 unless something crashes.
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(_ROOT), str(_ROOT / "src")]

from benchmarks import common  # noqa: E402

TARGETS = {"A/B": 0.6, "A/C": 1.5, "D": 1.10}
LIMITS_SIZE = 100_000
STRIDES = {"dense": 1, "sparse": 3}
SQLITE_DEFAULT_LIMIT = 32_766


def touch(rows: list) -> list:
    for row in rows:
        _ = row.user
    return rows


def variants(n: int, layout: str) -> list:
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

    def count(rows: list) -> None:
        # Another process emptying the tables would otherwise go unnoticed.
        assert len(rows) == n, f"{len(rows)} rows instead of {n}"

    def check(rows: list) -> None:
        count(rows)
        assert all(row.user.id == row.user_id for row in rows), "wrong targets"

    all_variants = [
        common.Variant("A", "cross-db prefetch_cross_db('user')", a, check=check),
        common.Variant("B", "same-db prefetch_related('user')", b, check=check),
        common.Variant("C", "same-db select_related('user')", c, check=check),
        common.Variant("A0", "cross-db sources only (no .user)", a0, check=count),
        common.Variant("B0", "same-db sources only (no .user)", b0, check=count),
    ]
    return all_variants if layout == "dense" else all_variants[:3]


def cached_access(n: int, repeat: int) -> tuple[float, float]:
    """Median seconds to read .user on all n loaded instances: (cross-db, Django FK)."""
    import time

    m = common.models()
    cross = touch(list(m.Source.objects.prefetch_cross_db("user")))
    same = touch(list(m.SameSource.objects.prefetch_related("user")))
    assert len(cross) == len(same) == n, "the tables changed under the benchmark"
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


def load(n: int, layout: str) -> None:
    common.load_cross(n, STRIDES[layout])
    common.load_same(n, STRIDES[layout])


def bench_size(n: int, layout: str, repeat: int, aliases: list[str]) -> dict:
    print(
        f"## {n:,} rows, {layout} keys (target ids {STRIDES[layout]}, {2 * STRIDES[layout]}, ...)"
    )
    load(n, layout)
    vs = variants(n, layout)
    for v in vs:  # warm-up: connections, statement caches, imports
        assert v.check is not None
        v.check(v.run())
    queries = {v.key: common.describe_queries(common.capture_queries(v.run, aliases)) for v in vs}
    times = common.time_variants(vs, repeat)
    memory = {v.key: common.peak_memory(v.run) for v in vs}
    notes = {v.key: [f"{common.mib(memory[v.key]):>9}", queries[v.key]] for v in vs}
    med = common.print_times(vs, times, notes, "peak mem  queries of one run, per database")
    ratios = {"A/B": med["A"] / med["B"], "A/C": med["A"] / med["C"]}
    if layout == "dense":
        cross, same = cached_access(n, repeat)
        print(
            f"D   cached .user on {n:,} loaded rows: cross-db {common.ms(cross)} "
            f"({cross / n * 1e9:.0f} ns/row), Django FK {common.ms(same)} "
            f"({same / n * 1e9:.0f} ns/row)"
        )
        ratios["D"] = cross / same
    for name, value in ratios.items():
        common.verdict(f"{name} at {n:,} rows, {layout} keys", value, TARGETS[name])
    print()
    return {"n": n, "layout": layout, **med, **ratios}


def _attempt(title: str, run, aliases: list[str]) -> None:
    try:
        queries = common.capture_queries(run, aliases)
    except Exception as exc:
        print(f"  FAILS     {title}\n            {common.exception_summary(exc)}")
    else:
        print(f"  succeeds  {title}\n            queries: {common.describe_queries(queries)}")


def limits(layout: str, loaded: tuple[int, str] | None) -> None:
    import sqlite3

    from django.conf import settings
    from django.db import connections
    from django.db.models import Prefetch

    from crossdb.batching import batch_size

    m = common.models()
    n = LIMITS_SIZE
    print(f"## limits at {n:,} rows, {layout} keys: backends that cap the parameters of one query")
    if loaded != (n, layout):
        load(n, layout)

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
    p.add_argument(
        "--layouts",
        type=lambda text: [part for part in text.split(",") if part],
        default=list(STRIDES),
        help="key layouts, among dense,sparse (default: both)",
    )
    p.add_argument("--no-limits", action="store_true", help="skip the limits section")
    args = p.parse_args()
    common.start(args, "bench_prefetch")
    from django.conf import settings

    aliases = list(settings.DATABASES)
    print(f"repeat: {args.repeat} interleaved runs per variant, median reported\n")
    unknown = set(args.layouts) - set(STRIDES)
    if unknown:
        p.error(f"unknown layouts: {', '.join(sorted(unknown))}")
    results = [
        bench_size(n, layout, args.repeat, aliases) for layout in args.layouts for n in args.sizes
    ]
    loaded = (args.sizes[-1], args.layouts[-1]) if args.sizes and args.layouts else None
    if not args.no_limits:
        for layout in reversed(args.layouts):
            limits(layout, loaded)
            loaded = (LIMITS_SIZE, layout)
    if args.profile:
        m = common.models()
        n = args.sizes[-1]
        for layout in args.layouts:
            if loaded != (n, layout):
                load(n, layout)
                loaded = (n, layout)
            common.print_profile(
                lambda: touch(list(m.Source.objects.prefetch_cross_db("user"))),
                f"A at {n:,} rows, {layout} keys",
            )
        common.print_profile(
            lambda: touch(list(m.SameSource.objects.prefetch_related("user"))),
            f"B at {n:,} rows, {loaded[1] if loaded else '?'} keys",
        )
    common.heading("summary")
    print(f"{'keys':>7}{'rows':>9}{'A':>12}{'B':>12}{'C':>12}{'A/B':>7}{'A/C':>7}{'D':>7}")
    for r in results:
        d = f"{r['D']:>7.2f}" if "D" in r else f"{'-':>7}"
        print(
            f"{r['layout']:>7}{r['n']:>9,}{common.ms(r['A']):>12}{common.ms(r['B']):>12}"
            f"{common.ms(r['C']):>12}{r['A/B']:>7.2f}{r['A/C']:>7.2f}{d}"
        )
    print(f"targets: A/B <= {TARGETS['A/B']}, A/C <= {TARGETS['A/C']}, D <= {TARGETS['D']}")
    common.finish()


if __name__ == "__main__":
    main()
