"""
on_delete=CASCADE across databases, against Django's CASCADE inside one database.

N targets, each with one dependent. Each run re-creates the data (not timed),
then times Target.objects.filter(id__lte=N).delete() until the dependents are gone:

  X  cross-database: Target in 'default', Source (CrossDBForeignKey, CASCADE) in
     'source'. The deletion records PendingPropagation rows in 'default' in its
     transaction; after commit crossdb deletes the dependents in 'source'. The
     timer stops once no Source row is left; then the run asserts that no
     PendingPropagation row remains either.
  S  same database: SameTarget and SameSource (models.ForeignKey, CASCADE) in 'same'.

Target: X/S <= 2.0. Queries per database of one run must not grow per row.
Always exits 0 unless something crashes (a failed assertion is a crash).
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(_ROOT), str(_ROOT / "src")]

from benchmarks import common  # noqa: E402

TARGET_RATIO = 2.0
# "Not per row": no database may see more than one query per this many rows.
ROWS_PER_QUERY_AT_LEAST = 10


def variants(n: int) -> list:
    m = common.models()

    def cross() -> bool:
        m.Target.objects.filter(id__lte=n).delete()
        return not m.Source.objects.exists()

    def same() -> bool:
        m.SameTarget.objects.filter(id__lte=n).delete()
        return not m.SameSource.objects.exists()

    def check_cross(gone: bool) -> None:
        assert gone, "cross-database CASCADE left Source rows behind"
        assert not m.Target.objects.exists(), "Target rows left"
        pending = common.pending_count()
        assert pending == 0, f"{pending} PendingPropagation row(s) left"

    def check_same(gone: bool) -> None:
        assert gone and not m.SameTarget.objects.exists(), "same-database CASCADE left rows"

    return [
        common.Variant(
            "X", "cross-db CASCADE + propagation", cross, lambda: common.load_cross(n), check_cross
        ),
        common.Variant(
            "S", "same-db CASCADE (ForeignKey)", same, lambda: common.load_same(n), check_same
        ),
    ]


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--size", type=lambda s: int(s.replace("_", "")), default=10_000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    common.start(args, "bench_cascade")
    from django.conf import settings

    n = args.size
    aliases = list(settings.DATABASES)
    print(f"repeat: {args.repeat} interleaved runs per variant, data re-created before each\n")
    heading = common.heading
    heading(f"deleting {n:,} targets, each with one dependent")
    vs = variants(n)
    queries = {}
    for v in vs:  # one untimed run per variant, with its queries captured
        assert v.setup is not None and v.check is not None
        v.setup()
        outcome: list = []
        queries[v.key] = common.capture_queries(lambda v=v, o=outcome: o.append(v.run()), aliases)
        v.check(outcome[0])
    times = common.time_variants(vs, args.repeat)
    notes = {v.key: [common.describe_queries(queries[v.key])] for v in vs}
    med = common.print_times(vs, times, notes, "queries of one run, per database")
    print()
    common.verdict(f"X/S at {n:,} rows", med["X"] / med["S"], TARGET_RATIO)
    for v in vs:
        most = max(len(statements) for statements in queries[v.key].values())
        ok = most * ROWS_PER_QUERY_AT_LEAST <= n
        print(
            f"{'PASS' if ok else 'FAIL'}  {v.key} queries not per row: at most {most} on one "
            f"database for {n:,} rows (target <= {n // ROWS_PER_QUERY_AT_LEAST:,})"
        )
    totals = {key: sum(map(len, per_alias.values())) for key, per_alias in queries.items()}
    print(
        f"      crossdb's own queries: {totals['X'] - totals['S']} more than Django's "
        f"same-database cascade ({totals['X']} vs {totals['S']}); Django's DeleteQuery "
        f"deletes {n:,} rows 100 keys per statement in both."
    )
    if args.profile:
        cross = vs[0]
        assert cross.setup is not None
        cross.setup()
        common.print_profile(cross.run, f"X at {n:,} rows")
    common.finish()


if __name__ == "__main__":
    main()
