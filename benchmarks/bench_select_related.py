"""
select_related() across databases (a second step) against Django's select_related() in one database.

For each size N: N sources, each pointing at a distinct target (dense keys, the layout of
bench_prefetch.py). Measured in the same process on the same data, interleaved:

  S   list(Source.objects.select_related("user")), touching every .user
      (CrossDBForeignKey: Source in 'source', Target in 'default': two steps)
  C   list(SameSource.objects.select_related("user")), touching every .user
      (models.ForeignKey, both tables in 'same': one join)
  SI  Source.objects.select_related("user").iterator(chunk_size=2000), touching every .user
      and keeping no row: chunk by chunk, the next chunk read by a worker thread while
      this one's targets load when both databases are servers and no transaction is open
  SN  SI with the read-ahead turned off (select_related.reads_ahead patched to False)
  CI  SameSource.objects.select_related("user").iterator(chunk_size=2000), the same way
  A   Source.objects.prefetch_cross_db("user") and B SameSource.objects.prefetch_related("user"),
      touching every .user (bench_prefetch.py's A and B)

Targets: S/C <= 1.2 at 100,000 rows; SI/CI <= 1.0 on the real topology (moonshot); peak memory
(tracemalloc) of S <= 1.2 x C's; A/B <= 0.6. The peak memory of SI against CI's is printed, not
judged: on the real topology the sources come from MariaDB, whose client (mysqlclient) holds the
whole result in Python objects, while CI streams from a PostgreSQL server-side cursor. Always
exits 0 unless something crashes.
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(_ROOT), str(_ROOT / "src")]

from django.db import DatabaseError  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks.bench_prefetch import touch  # noqa: E402

TARGETS = {"S/C": 1.2, "SI/CI": 1.0, "mem S/C": 1.2, "A/B": 0.6}
CHUNK = 2000


def stream(rows) -> int:
    """Touch every row's .user, keeping none; return how many rows and check each target."""
    count = 0
    for row in rows:
        assert row.user.id == row.user_id, "wrong target"
        count += 1
    return count


def variants(n: int) -> list:
    from crossdb import select_related

    m = common.models()

    def s() -> list:
        return touch(list(m.Source.objects.select_related("user")))

    def c() -> list:
        return touch(list(m.SameSource.objects.select_related("user")))

    def si() -> int:
        return stream(m.Source.objects.select_related("user").iterator(chunk_size=CHUNK))

    def sn() -> int:
        reads_ahead = select_related.reads_ahead
        select_related.reads_ahead = lambda source, how: False
        try:
            return stream(m.Source.objects.select_related("user").iterator(chunk_size=CHUNK))
        finally:
            select_related.reads_ahead = reads_ahead

    def ci() -> int:
        return stream(m.SameSource.objects.select_related("user").iterator(chunk_size=CHUNK))

    def a() -> list:
        return touch(list(m.Source.objects.prefetch_cross_db("user")))

    def b() -> list:
        return touch(list(m.SameSource.objects.prefetch_related("user")))

    def check(rows: list) -> None:
        # Another process emptying the tables would otherwise go unnoticed.
        assert len(rows) == n, f"{len(rows)} rows instead of {n}"
        assert all(row.user.id == row.user_id for row in rows), "wrong targets"

    def counted(count: int) -> None:
        assert count == n, f"{count} rows instead of {n}"

    return [
        common.Variant("S", "cross-db select_related('user')", s, check=check),
        common.Variant("C", "same-db select_related('user')", c, check=check),
        common.Variant("SI", "cross-db .iterator(2000)", si, check=counted),
        common.Variant("SN", "cross-db .iterator(2000), no read-ahead", sn, check=counted),
        common.Variant("CI", "same-db .iterator(2000)", ci, check=counted),
        common.Variant("A", "cross-db prefetch_cross_db('user')", a, check=check),
        common.Variant("B", "same-db prefetch_related('user')", b, check=check),
    ]


def bench_size(n: int, repeat: int, aliases: list[str]) -> dict:
    from crossdb import select_related

    m = common.models()
    print(f"## {n:,} rows, dense keys (target ids 1, 2, ...)")
    common.load_cross(n)
    common.load_same(n)
    how = select_related.plan(m.Source.objects.select_related("user"))
    assert how is not None
    print(f"read-ahead under .iterator(): {select_related.reads_ahead('source', how)}")
    vs = variants(n)
    failed = {}
    for v in list(vs):  # warm-up: connections, statement caches, imports
        assert v.check is not None
        try:
            v.check(v.run())
        except DatabaseError as exc:
            if v.key != "B":
                raise
            # Django's own prefetch_related() sends every key in one IN list, which
            # SQLite 3.40 with Django 5.2 refuses past its expression depth.
            failed[v.key] = common.exception_summary(exc)
            vs.remove(v)
            print(f"B  same-db prefetch_related('user') FAILS: {failed['B']}")
    queries = {v.key: common.describe_queries(common.capture_queries(v.run, aliases)) for v in vs}
    times = common.time_variants(vs, repeat)
    memory = {v.key: common.peak_memory(v.run) for v in vs}
    notes = {v.key: [f"{common.mib(memory[v.key]):>9}", queries[v.key]] for v in vs}
    med = common.print_times(vs, times, notes, "peak mem  queries of one run, per database")
    print("    (SI, SN: the worker thread's query on 'source' is not captured by the count)")
    ratios = {
        "S/C": med["S"] / med["C"],
        "SI/CI": med["SI"] / med["CI"],
        "mem S/C": memory["S"] / memory["C"],
        "mem SI/CI": memory["SI"] / memory["CI"],
        "A/B": med["A"] / med["B"] if "B" in med else float("nan"),
    }
    for name, value in ratios.items():
        if name == "A/B" and failed:
            print(f"      A/B at {n:,} rows: no ratio, Django's prefetch_related() failed")
        elif name in TARGETS:
            common.verdict(f"{name} at {n:,} rows", value, TARGETS[name])
    print(f"      mem SI/CI at {n:,} rows = {ratios['mem SI/CI']:.2f} (not a target, see above)")
    print(f"      SN/CI at {n:,} rows = {med['SN'] / med['CI']:.2f} (no read-ahead)")
    print()
    return {"n": n, **med, **ratios, "SN/CI": med["SN"] / med["CI"]}


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--sizes", type=common.int_list, default=[10_000, 100_000])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    common.start(args, "bench_select_related")
    from django.conf import settings

    aliases = list(settings.DATABASES)
    print(f"repeat: {args.repeat} interleaved runs per variant, median reported\n")
    results = [bench_size(n, args.repeat, aliases) for n in args.sizes]
    if args.profile:
        m = common.models()
        common.print_profile(
            lambda: touch(list(m.Source.objects.select_related("user"))),
            f"S at {args.sizes[-1]:,} rows",
        )
    common.heading("summary")
    print(
        f"{'rows':>9}{'S':>12}{'C':>12}{'SI':>12}{'SN':>12}{'CI':>12}"
        f"{'S/C':>7}{'SI/CI':>7}{'SN/CI':>7}{'memS/C':>8}{'memSI/CI':>9}{'A/B':>6}"
    )
    for r in results:
        print(
            f"{r['n']:>9,}{common.ms(r['S']):>12}{common.ms(r['C']):>12}{common.ms(r['SI']):>12}"
            f"{common.ms(r['SN']):>12}{common.ms(r['CI']):>12}{r['S/C']:>7.2f}{r['SI/CI']:>7.2f}"
            f"{r['SN/CI']:>7.2f}{r['mem S/C']:>8.2f}{r['mem SI/CI']:>9.2f}{r['A/B']:>6.2f}"
        )
    print(
        f"targets: S/C <= {TARGETS['S/C']} (at 100,000 rows), SI/CI <= {TARGETS['SI/CI']} "
        f"(real topology, moonshot), memory S/C <= {TARGETS['mem S/C']}, "
        f"A/B <= {TARGETS['A/B']}"
    )
    common.finish()


if __name__ == "__main__":
    main()
