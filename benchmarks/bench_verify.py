"""
manage.py verify_links on large tables, against what any orphan check must at least cost.

Data (generated with SQL, kept between runs while the row counts match): sources in
'source', each row referencing one distinct target key through a CrossDBForeignKey,
targets in 'default'; 1% of the references dangle. Three links:

  dense   1,000,000 references to keys 1..1,000,000 (sources in a shuffled order);
          1,000,000 target rows (the multiples of 100 are missing)
  big     the same with 4,000,000 references and targets (memory growth)
  sparse  1,000,000 references to every 10th key of a 10,000,000-row target table,
          so a page of keys spans 10 times its size and the probe must use IN

Variants on the dense link, each run in a fresh subprocess (its peak RSS is its own,
/proc/self/status VmHWM), interleaved, --repeat times:

  V    call_command("verify_links", "benchapp.VerifySource", "--format", "json")
       (the command's default --batch-size, 50000)
  V10  the same with --batch-size 10000 (smaller pages: more round trips)
  a    naive set difference: both key columns read fully into Python sets
       (QuerySet.values_list(flat=True)), then subtracted
  b    the anti-join SELECT ... LEFT JOIN ... WHERE t.id IS NULL inside the sources'
       database, on a copy of the target keys made there beforehand (not timed)
  c    the I/O floor: both key columns merely read, streaming (server-side cursors on
       PostgreSQL and MariaDB, fetchmany(10000)), raw DB-API, no Python sets

Then V on the big link (peak RSS and tracemalloc peak at 1M vs 4M) and on the sparse
link (time per reference vs the dense link). Each run of V checks its JSON document
(checked, orphans); each baseline checks its own count.

Targets: V <= a and V <= 1.5 x c; V's peak RSS <= 40% of a's and growing < 10% from
1M to 4M references; sparse no slower per reference than dense. Exits 0 whatever the
verdicts; a non-zero exit means something crashed (including a wrong count).
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(_ROOT), str(_ROOT / "src")]

from benchmarks import common  # noqa: E402
from benchmarks.series import insert_series, vacuum_analyze  # noqa: E402

ROUTES = {
    "benchapp.VerifySource": "source",
    "benchapp.VerifyBigSource": "source",
    "benchapp.VerifySparseSource": "source",
    "benchapp.VerifyTargetCopy": "source",
}
# Source row i references key stride * ((i - 1) * PERMUTE % refs + 1): a shuffled order.
PERMUTE = 7919
DANGLING_EVERY = 100  # 1%
STREAM_CHUNK = 10_000
TARGETS = {"V/a": 1.0, "V/c": 1.5, "RSS V/a": 0.40, "RSS 4M/1M": 1.10, "sparse/dense": 1.0}


@dataclass(frozen=True)
class Scenario:
    name: str
    source: str  # model names in benchapp
    target: str
    refs: int
    stride: int
    target_rows: int

    @property
    def label(self) -> str:
        return f"benchapp.{self.source}"

    @property
    def orphans(self) -> int:
        return self.refs // DANGLING_EVERY

    def key_sql(self, i: str) -> str:
        return f"{self.stride} * ((({i} - 1) * {PERMUTE}) % {self.refs} + 1)"

    def target_ids(self) -> tuple[int, str]:
        """How many candidate ids (1..n), and the condition on ``g`` keeping the targets."""
        hole = DANGLING_EVERY * self.stride
        last_referenced = self.refs * self.stride
        return self.target_rows + self.orphans, f"(g > {last_referenced} OR g % {hole} <> 0)"


def scenarios(args: Any) -> dict[str, Scenario]:
    found = {
        "dense": Scenario("dense", "VerifySource", "VerifyTarget", args.refs, 1, args.refs),
        "big": Scenario(
            "big", "VerifyBigSource", "VerifyBigTarget", args.big_refs, 1, args.big_refs
        ),
        "sparse": Scenario(
            "sparse", "VerifySparseSource", "VerifySparseTarget", args.refs, 10, args.sparse_rows
        ),
    }
    for s in found.values():
        assert s.refs % DANGLING_EVERY == 0 and math.gcd(PERMUTE, s.refs) == 1, s
        assert s.target_rows >= s.refs * s.stride - s.orphans, s
    return found


def model(name: str) -> Any:
    return getattr(common.models(), name)


# Data -----------------------------------------------------------------------


def count_rows(model_class: Any) -> int:
    return int(model_class._base_manager.count())


def as_generated(s: Scenario) -> bool:
    """The row counts, and the sum of the references (any order of 1..refs, times stride)."""
    from django.db.models import Count, Sum

    source, target = model(s.source), model(s.target)
    references = source._base_manager.aggregate(n=Count("pk"), total=Sum("target_id"))
    return (
        references == {"n": s.refs, "total": s.stride * s.refs * (s.refs + 1) // 2}
        and count_rows(target) == s.target_rows
    )


def ensure_data(s: Scenario) -> str:
    source, target = model(s.source), model(s.target)
    if as_generated(s):
        return "kept"
    began = time.perf_counter()
    common.empty_tables(source, target)
    n, keep = s.target_ids()
    insert_series(target, {"id": "g"}, n, keep)
    insert_series(source, {"id": "g", "target_id": s.key_sql("g")}, s.refs)
    vacuum_analyze(target, source)
    assert as_generated(s), s
    return f"generated in {time.perf_counter() - began:.1f} s"


def ensure_copy(s: Scenario) -> str:
    """VerifyTarget's keys copied into the sources' database (for the anti-join)."""
    from django.db import connections, transaction

    copy = model("VerifyTargetCopy")
    if count_rows(copy) == s.target_rows:
        return "kept"
    began = time.perf_counter()
    common.empty_tables(copy)
    keys = list(model(s.target)._base_manager.values_list("id", flat=True))
    connection = connections[common._alias(copy)]
    table = connection.ops.quote_name(copy._meta.db_table)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        for start in range(0, len(keys), STREAM_CHUNK):
            cursor.executemany(
                f"INSERT INTO {table} (id) VALUES (%s)",
                [(key,) for key in keys[start : start + STREAM_CHUNK]],
            )
    vacuum_analyze(copy)
    assert count_rows(copy) == s.target_rows
    return f"copied in {time.perf_counter() - began:.1f} s"


# What a measuring subprocess runs ---------------------------------------------


def run_verify_links(s: Scenario, batch: int | None) -> dict[str, Any]:
    from django.core.management import call_command

    out = io.StringIO()
    options = ["--batch-size", str(batch)] if batch else []
    try:
        call_command("verify_links", s.label, "--format", "json", *options, stdout=out)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    (link,) = json.loads(out.getvalue())["links"]
    return {"checked": link["checked"], "orphans": link["orphans"], "exit": code}


def run_naive(s: Scenario) -> dict[str, Any]:
    source, target = model(s.source), model(s.target)
    referenced = set(
        source._base_manager.filter(target__isnull=False).values_list("target_id", flat=True)
    )
    existing = set(target._base_manager.values_list("id", flat=True))
    dangling = referenced - existing
    return {"checked": len(referenced), "orphans": len(dangling)}


def run_anti_join(s: Scenario) -> dict[str, Any]:
    from django.db import connections

    source, copy = model(s.source), model("VerifyTargetCopy")
    connection = connections[common._alias(source)]
    quote = connection.ops.quote_name
    sql = (
        f"SELECT s.target_id FROM {quote(source._meta.db_table)} s "
        f"LEFT JOIN {quote(copy._meta.db_table)} t ON t.id = s.target_id "
        f"WHERE s.target_id IS NOT NULL AND t.id IS NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        dangling = cursor.fetchall()
    return {"orphans": len(dangling)}


def stream_column(model_class: Any, column: str, where: str = "") -> int:
    """Read one column with a streaming cursor, ``STREAM_CHUNK`` rows a fetch; return the count."""
    from django.db import connections, transaction

    connection = connections[common._alias(model_class)]
    table = connection.ops.quote_name(model_class._meta.db_table)
    sql = f"SELECT {connection.ops.quote_name(column)} FROM {table}{where}"
    connection.ensure_connection()
    raw = connection.connection
    with ExitStack() as stack:
        if connection.vendor == "postgresql":  # a server-side cursor lives in a transaction
            stack.enter_context(transaction.atomic(using=connection.alias))
            cursor = raw.cursor(name="bench_verify_floor")
        elif connection.vendor == "mysql":
            import MySQLdb.cursors

            cursor = raw.cursor(MySQLdb.cursors.SSCursor)
        else:
            cursor = raw.cursor()
        stack.callback(cursor.close)
        cursor.execute(sql)
        count = 0
        while rows := cursor.fetchmany(STREAM_CHUNK):
            count += len(rows)
    return count


def run_floor(s: Scenario) -> dict[str, Any]:
    read = stream_column(model(s.source), "target_id", " WHERE target_id IS NOT NULL")
    targets = stream_column(model(s.target), "id")
    return {"checked": read, "targets": targets}


def expected(s: Scenario, variant: str) -> dict[str, Any]:
    if variant in ("V", "V10"):
        return {"checked": s.refs, "orphans": s.orphans, "exit": 1}
    if variant == "a":
        return {"checked": s.refs, "orphans": s.orphans}
    if variant == "b":
        return {"orphans": s.orphans}
    return {"checked": s.refs, "targets": s.target_rows}


def child(spec: dict[str, Any], args: Any) -> None:
    """Run one variant once in this fresh process; print one ``RESULT {json}`` line."""
    import cProfile
    import gc
    import pstats
    import tracemalloc

    common.setup_child(args.topology, ROUTES)
    from django.core.management import get_commands, load_command_class
    from django.db import connections

    s = scenarios(args)[spec["scenario"]]
    variant = spec["variant"]
    runs = {
        "V": lambda: run_verify_links(s, None),
        "V10": lambda: run_verify_links(s, 10_000),
        "a": lambda: run_naive(s),
        "b": lambda: run_anti_join(s),
        "c": lambda: run_floor(s),
    }
    # Not timed: connections, the command's import.
    for alias in connections:
        connections[alias].ensure_connection()
    load_command_class(get_commands()["verify_links"], "verify_links")
    queries: Counter[str] = Counter()

    def counting(alias: str) -> Callable[..., Any]:
        def wrapper(execute: Callable[..., Any], *args: Any) -> Any:
            queries[alias] += 1
            return execute(*args)

        return wrapper

    gc.collect()
    rss_before = common.proc_status_kib("VmRSS")
    profiler = cProfile.Profile() if spec.get("profile") else None
    if spec.get("tracemalloc"):
        tracemalloc.start()
    with ExitStack() as stack:
        for alias in connections:
            stack.enter_context(connections[alias].execute_wrapper(counting(alias)))
        cpu_began = time.process_time()
        began = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        result = runs[variant]()
        if profiler is not None:
            profiler.disable()
        seconds = time.perf_counter() - began
        cpu = time.process_time() - cpu_began
    traced = tracemalloc.get_traced_memory()[1] if tracemalloc.is_tracing() else 0
    want = expected(s, variant)
    if result != want:
        raise AssertionError(f"{s.name} {variant}: got {result}, expected {want}")
    if profiler is not None:
        for order in ("tottime", "cumulative"):
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order)
            stats.print_stats(25)
            text = out.getvalue()
            print(f"--- profile: {variant} on {s.name}, sorted by {order}")
            print(text[text.find("   ncalls") :].rstrip())
            print()
    report = {
        "seconds": seconds,
        "cpu": cpu,
        "hwm_kib": common.proc_status_kib("VmHWM"),
        "rss_before_kib": rss_before,
        "traced": traced,
        "queries": dict(queries),
    }
    print("RESULT " + json.dumps(report), flush=True)


# The parent: data, subprocesses, report ----------------------------------------


def measure(args: Any, scenario: str, variant: str, **flags: Any) -> dict[str, Any]:
    spec = json.dumps({"scenario": scenario, "variant": variant, **flags})
    argv = [sys.executable, str(Path(__file__).resolve()), "--topology", args.topology]
    argv += ["--refs", str(args.refs), "--big-refs", str(args.big_refs)]
    argv += ["--sparse-rows", str(args.sparse_rows), "--child", spec]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise RuntimeError(f"{scenario} {variant} crashed (exit {done.returncode})")
    report: dict[str, Any] = {}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            report = json.loads(line[len("RESULT ") :])
        else:
            print(line)
    return report


LABELS = {  # print_times gives a key 3 columns and its label 38
    "V": "verify_links (default batch, 50000)",
    "V10": " verify_links --batch-size 10000",
    "a": "naive set difference",
    "b": "anti-join, one database",
    "c": "I/O floor: stream both key columns",
}


def describe(report: dict[str, Any]) -> str:
    """``source 1,001, default 2,002``: the queries one run sent through Django, per alias."""
    parts = [f"{alias} {count:,}" for alias, count in report["queries"].items() if count]
    return ", ".join(parts) or "none (raw DB-API cursors only)"


def mib_kib(kib: float) -> str:
    return f"{kib / 1024:,.0f} MiB"


def run_variants(
    args: Any, scenario: str, keys: list[str], repeat: int
) -> tuple[dict[str, list[float]], dict[str, list[dict[str, Any]]]]:
    times: dict[str, list[float]] = {}
    reports: dict[str, list[dict[str, Any]]] = {key: [] for key in keys}
    for key in keys:
        times[key], times[f"{key} cpu"] = [], []
    for _ in range(repeat):
        for key in keys:
            report = measure(args, scenario, key)
            reports[key].append(report)
            times[key].append(report["seconds"])
            times[f"{key} cpu"].append(report["cpu"])
    return times, reports


def print_block(
    keys: list[str], times: dict[str, list[float]], reports: dict[str, list[dict[str, Any]]]
) -> dict[str, float]:
    """The timing table, with each variant's peak RSS; returns medians (and 'X rss' KiB)."""
    variants = [common.Variant(key, LABELS[key], lambda: None) for key in keys]
    notes = {}
    for key in keys:
        hwm = common.median([r["hwm_kib"] for r in reports[key]])
        before = common.median([r["rss_before_kib"] for r in reports[key]])
        notes[key] = [
            f"{mib_kib(hwm):>9}",
            f"{mib_kib(hwm - before):>9}",
            describe(reports[key][0]),
        ]
    medians = common.print_times(
        variants, times, notes, "peak RSS  run's own  Django queries (one run)"
    )
    for key in keys:
        medians[f"{key} rss"] = common.median([r["hwm_kib"] for r in reports[key]])
    return medians


def probe_kind(s: Scenario) -> str:
    """Which probe the Verifier sends for the first page of the link (rows in primary key order)."""
    from crossdb.verification import Verifier

    verifier = Verifier(model(s.source)._meta.get_field("target"))
    page = next(verifier.pages())
    keys = list(page)
    queries = common.capture_queries(lambda: verifier.existing(keys), [verifier.target_db])
    (sql,) = queries[verifier.target_db]
    if "= ANY(" in sql:
        kind = "= ANY(array)"
    elif "json_each(" in sql:
        kind = "IN json_each(array)"
    elif " IN (" in sql:
        kind = "IN (...)"
    else:
        kind = "range (>= first AND <= last)"
    span = max(keys) - min(keys) + 1
    return f"{kind}: first page {len(keys):,} keys spanning {span:,}"


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--repeat", type=int, default=3, help="runs per variant at 1M (default 3)")
    p.add_argument(
        "--repeat-big", type=int, default=1, help="runs of V at 4M references (default 1)"
    )
    p.add_argument("--refs", type=lambda t: int(t.replace("_", "")), default=1_000_000)
    p.add_argument("--big-refs", type=lambda t: int(t.replace("_", "")), default=4_000_000)
    p.add_argument("--sparse-rows", type=lambda t: int(t.replace("_", "")), default=10_000_000)
    p.add_argument(
        "--max-wait",
        type=float,
        default=900,
        help="seconds to wait for a 1-minute load average below 1.0 before measuring "
        "(default 900; 0: do not wait)",
    )
    p.add_argument("--child", help=argparse_hidden())
    args = p.parse_args()
    if args.child:
        child(json.loads(args.child), args)
        return
    if args.topology != "all":
        common.add_routes(args.topology, ROUTES)
    common.start(args, "bench_verify")
    all_scenarios = scenarios(args)
    dense, big, sparse = all_scenarios["dense"], all_scenarios["big"], all_scenarios["sparse"]
    print("tables (bench_verify): VerifyTarget/VerifyBigTarget/VerifySparseTarget -> default,")
    print("           Verify*Source (CrossDBForeignKey, DO_NOTHING) and VerifyTargetCopy -> source")
    common.heading("data")
    for s in all_scenarios.values():
        state = ensure_data(s)
        print(
            f"{s.name:7} {s.refs:>10,} references ({s.orphans:,} dangling) -> "
            f"{s.target_rows:>10,} targets: {state}; probe {probe_kind(s)}"
        )
    print(f"copy    {dense.target_rows:>10,} VerifyTarget keys in 'source': {ensure_copy(dense)}")
    print()
    if args.max_wait > 0:
        common.wait_for_quiet(limit=args.max_wait)
    print(f"load before measuring: {common.load_average()}\n")

    keys = ["V", "V10", "a", "b", "c"]
    common.heading(
        f"{dense.refs:,} references, 1% dangling: {args.repeat} interleaved runs, "
        f"each in a fresh process"
    )
    times, reports = run_variants(args, "dense", keys, args.repeat)
    m = print_block(keys, times, reports)
    print()
    for v in ("V", "V10"):
        print(
            f"{v:3} / a = {m[v] / m['a']:.2f}   {v} / c = {m[v] / m['c']:.2f}   "
            f"{v} / b = {m[v] / m['b']:.2f}   peak RSS {v} / a = {m[v + ' rss'] / m['a rss']:.2f}"
        )
    print()

    common.heading(
        f"memory growth: V at {dense.refs:,} and {big.refs:,} references "
        f"({args.repeat_big} run(s) at {big.refs:,}, plus one run each under tracemalloc)"
    )
    big_times, big_reports = run_variants(args, "big", ["V"], args.repeat_big)
    traced = {s.name: measure(args, s.name, "V", tracemalloc=True)["traced"] for s in (dense, big)}
    rss = {"dense": m["V rss"], "big": common.median([r["hwm_kib"] for r in big_reports["V"]])}
    big_median = common.median(big_times["V"])
    print(f"{'references':>12}{'median':>12}{'per ref':>10}{'peak RSS':>11}{'tracemalloc':>13}")
    for s, seconds in ((dense, m["V"]), (big, big_median)):
        print(
            f"{s.refs:>12,}{common.ms(seconds):>12}{seconds / s.refs * 1e6:>8.2f}us"
            f"{mib_kib(rss[s.name]):>11}{common.mib(traced[s.name]):>13}"
        )
    print()

    common.heading(
        f"sparse: {sparse.refs:,} references into {sparse.target_rows:,} targets "
        f"({args.repeat} runs of V)"
    )
    sparse_times, sparse_reports = run_variants(args, "sparse", ["V"], args.repeat)
    sparse_m = print_block(["V"], sparse_times, sparse_reports)
    per_dense = m["V"] / dense.refs
    per_sparse = sparse_m["V"] / sparse.refs
    print(
        f"per reference: sparse {per_sparse * 1e6:.2f} us, dense {per_dense * 1e6:.2f} us, "
        f"sparse/dense = {per_sparse / per_dense:.2f}"
    )
    print()

    if args.profile:
        common.heading("profile: V on the dense link (one more run, under cProfile)")
        measure(args, "dense", "V", profile=True)

    common.heading("verdicts (V = verify_links at its default --batch-size)")
    common.verdict("time V / naive set difference (a)", m["V"] / m["a"], TARGETS["V/a"])
    common.verdict("time V / I/O floor (c)", m["V"] / m["c"], TARGETS["V/c"])
    common.verdict(
        "peak RSS V / naive set difference (a)", m["V rss"] / m["a rss"], TARGETS["RSS V/a"]
    )
    common.verdict(
        f"peak RSS V at {big.refs:,} / at {dense.refs:,}",
        rss["big"] / rss["dense"],
        TARGETS["RSS 4M/1M"],
    )
    common.verdict(
        f"tracemalloc peak V at {big.refs:,} / at {dense.refs:,}",
        traced["big"] / traced["dense"],
        TARGETS["RSS 4M/1M"],
    )
    common.verdict(
        "time per reference sparse / dense", per_sparse / per_dense, TARGETS["sparse/dense"]
    )
    print("informational, --batch-size 10000:")
    common.verdict("  time V10 / naive set difference (a)", m["V10"] / m["a"], TARGETS["V/a"])
    common.verdict("  time V10 / I/O floor (c)", m["V10"] / m["c"], TARGETS["V/c"])
    common.verdict(
        "  peak RSS V10 / naive set difference (a)", m["V10 rss"] / m["a rss"], TARGETS["RSS V/a"]
    )
    common.finish()


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
