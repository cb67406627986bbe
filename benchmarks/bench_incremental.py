"""
verify_links --incremental after 1% of the references were written, against a full run.

Data (generated with SQL with the log trigger removed, so the load is not "written"):
N references in 'source' (IncrementalSource, a CrossDBForeignKey with
capture_deletes=True) to N targets in 'default' (IncrementalTarget), in a shuffled
order; the targets whose key is a multiple of 100 are missing (1% dangle).

Then two batches of writes through the ORM, each N/100 rows (half bulk_create, half
QuerySet.update() moving the key to the next one): the first with the log trigger
removed (its time is the cost without the trigger), the second with it installed
(only those are logged). Then, in this process, --repeat interleaved runs of

  F  call_command("verify_links", label, "--format", "json")          (full scan)
  I  call_command("verify_links", "--incremental", label, "--format", "json")
     with CROSSDB_INCREMENTAL_RECHECK_DELAY=0: every logged row is past the delay,
     so the run reads, checks and deletes it (all but the orphans, which stay)
  Y  the same with a delay of an hour: every row is younger, so the run reads and
     checks it and keeps it for a later run

each incremental run starting from the same log (the rows the writes logged, put
back as they were before each run), and one more run of each under tracemalloc for
its peak. Every run checks its counts and what it left in the log.

A row costs one I-run when runs are at least the delay apart (the steady state the
target is about), and one Y-run more for each run made within the delay of its
write: (I + Y) / F is printed for runs more frequent than the delay.

Targets: I / F <= 0.05; I's tracemalloc peak <= F's. Exits 0 whatever the verdicts; a
non-zero exit means something crashed (including a wrong count).
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(_ROOT), str(_ROOT / "src")]

from benchmarks import common  # noqa: E402
from benchmarks.series import insert_series, vacuum_analyze  # noqa: E402

ROUTES = {"benchapp.IncrementalSource": "source"}
LABEL = "benchapp.IncrementalSource.target"
PERMUTE = 7919
DANGLING_EVERY = 100
CHUNK = 1000
SETTLE = 1.0  # seconds between putting the log back and a timed run
TARGETS = {"I/F": 0.05, "peak I/F": 1.0}


def generate(n: int) -> None:
    from django.db import connections

    from crossdb.capture_log_sql import remove_log
    from crossdb.models import WrittenReference

    source, target = common.models().IncrementalSource, common.models().IncrementalTarget
    remove_log(connections["source"], LABEL)
    common.empty_tables(source, target)
    WrittenReference.objects.using("source").all().delete()
    for alias in ("default", "source"):
        # Another script's bulk deletions (bench_capture's) leave the queue's pages behind
        # until a vacuum, and every run reads the queue: start from an empty one.
        common.empty_queue(alias)
    insert_series(target, {"id": "g"}, n, f"g % {DANGLING_EVERY} <> 0")
    insert_series(source, {"id": "g", "target_id": f"((g - 1) * {PERMUTE}) % {n} + 1"}, n)
    vacuum_analyze(target, source)


def write(n: int, count: int, rng: random.Random) -> tuple[float, int]:
    """``count`` writes (half inserts, half key updates); return the seconds and the orphans."""
    from django.db.models import F

    source = common.models().IncrementalSource
    inserted = [rng.randint(1, n) for _ in range(count // 2)]
    updated = rng.sample(range(1, n + 1), count - count // 2)
    began = time.perf_counter()
    source.objects.using("source").bulk_create(
        (source(target_id=key) for key in inserted), batch_size=CHUNK
    )
    for start in range(0, len(updated), CHUNK):
        rows = source.objects.using("source").filter(id__in=updated[start : start + CHUNK])
        rows.update(target_id=F("target_id") % n + 1)
    seconds = time.perf_counter() - began
    moved = source._base_manager.using("source").filter(id__in=updated)
    keys = inserted + list(moved.values_list("target_id", flat=True))
    return seconds, sum(1 for key in keys if key % DANGLING_EVERY == 0)


def verify(*options: str) -> dict[str, Any]:
    from django.core.management import call_command

    out = io.StringIO()
    with contextlib.suppress(SystemExit):  # exit status 1: orphans found
        call_command("verify_links", LABEL, "--format", "json", *options, stdout=out)
    (link,) = json.loads(out.getvalue())["links"]
    return dict(link)


def logged_rows() -> list[tuple[Any, ...]]:
    from crossdb.models import WrittenReference

    rows = WrittenReference.objects.using("source").order_by("id")
    return list(rows.values_list("id", "link", "source_pk", "logged_at"))


def restore_log(rows: list[tuple[Any, ...]]) -> None:
    """Put the log back as the writes left it (same ids, same times)."""
    from crossdb.models import WrittenReference

    log = WrittenReference.objects.using("source")
    log.all()._raw_delete("source")
    log.bulk_create(
        (WrittenReference(id=i, link=link, source_pk=pk, logged_at=at) for i, link, pk, at in rows),
        batch_size=CHUNK,
    )


def past_delay(run: Any, *options: str) -> dict[str, Any]:
    from django.test import override_settings

    with override_settings(CROSSDB_INCREMENTAL_RECHECK_DELAY=0):
        return dict(run(*options))


def within_delay(run: Any, *options: str) -> dict[str, Any]:
    from django.test import override_settings

    with override_settings(CROSSDB_INCREMENTAL_RECHECK_DELAY=3600):
        return dict(run(*options))


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--rows", type=lambda t: int(t.replace("_", "")), default=1_000_000)
    p.add_argument("--repeat", type=int, default=3, help="interleaved runs of each (default 3)")
    args = p.parse_args()
    if args.topology != "all":
        common.add_routes(args.topology, ROUTES)
    common.start(args, "bench_incremental")
    from django.db import connections
    from django.db.models.functions import Mod

    from crossdb.capture_log_sql import LogSpec, install_log

    n, written = args.rows, args.rows // 100
    source = common.models().IncrementalSource
    rng = random.Random(20261130)
    common.heading("data")
    began = time.perf_counter()
    generate(n)
    print(
        f"{n:,} references ({n // DANGLING_EVERY:,} dangling) generated in "
        f"{time.perf_counter() - began:.1f} s"
    )
    unlogged, _ = write(n, written, rng)
    install_log(connections["source"], LogSpec.of(source._meta.get_field("target")))
    logged, new_orphans = write(n, written, rng)
    print(
        f"writes of {written:,} references ({written // 2:,} bulk_create, "
        f"{written - written // 2:,} update()): without the log trigger {unlogged:.2f} s, "
        f"with it {logged:.2f} s ({(logged / unlogged - 1) * 100:+.0f}%)"
    )
    total = n + written // 2 * 2
    all_orphans = (
        source._base_manager.annotate(r=Mod("target_id", DANGLING_EVERY)).filter(r=0).count()
    )
    print(
        f"then {total:,} references, {all_orphans:,} dangling; the second batch of writes "
        f"({written:,} logged rows) holds {new_orphans:,}"
    )
    print()

    log = logged_rows()
    incremental = {"logged": written, "checked": written, "orphans": new_orphans}
    wants = {
        "F": ({"checked": total, "orphans": all_orphans}, written),
        "I": ({**incremental, "awaiting_recheck": new_orphans}, new_orphans),
        "Y": ({**incremental, "awaiting_recheck": written}, written),
    }
    runs = {
        "F": verify,
        "I": lambda: past_delay(verify, "--incremental"),
        "Y": lambda: within_delay(verify, "--incremental"),
    }
    times: dict[str, list[float]] = {key: [] for key in runs}
    for _ in range(args.repeat):
        for key, run in runs.items():
            restore_log(log)
            # Let the servers finish the restore's background work (MariaDB purges the
            # deleted rows) before the clock starts: the writes happened long before.
            time.sleep(SETTLE)
            began = time.perf_counter()
            link = run()
            times[key].append(time.perf_counter() - began)
            want, left = wants[key]
            got = {name: link[name] for name in want}
            if got != want or len(logged_rows()) != left:
                raise AssertionError(f"{key}: got {got}, expected {want}, {left} rows left")
    peaks = {}
    for key, run in runs.items():
        restore_log(log)
        peaks[key] = common.peak_memory(run)
    median = {key: common.median(values) for key, values in times.items()}

    common.heading(f"{args.repeat} interleaved runs in this process")
    print(f"{'':3}{'':50}{'median':>12}{'runs':>24}{'tracemalloc peak':>18}")
    titles = {
        "F": "verify_links (full scan)",
        "I": "--incremental, rows past the delay (deleted)",
        "Y": "--incremental, rows within the delay (kept)",
    }
    for key, title in titles.items():
        line = ", ".join(f"{t:.3f}" for t in times[key])
        print(
            f"{key:3}{title:50}{common.ms(median[key]):>12}{line:>24}{common.mib(peaks[key]):>18}"
        )
    print()
    if args.profile:
        common.heading("where an incremental run's time goes (rows past the delay)")
        restore_log(log)
        common.print_query_timings(common.timed_queries(runs["I"], ("source", "default")))
        print()
        restore_log(log)
        common.print_profile(runs["I"], "I", lines=25)
    common.heading("verdicts")
    common.verdict("time I / F", median["I"] / median["F"], TARGETS["I/F"])
    print(
        f"      time (I + Y) / F = {(median['I'] + median['Y']) / median['F']:.2f} "
        "(a row also checked by one run within the delay of its write)"
    )
    common.verdict("tracemalloc peak I / F", peaks["I"] / peaks["F"], TARGETS["peak I/F"])
    common.finish()


if __name__ == "__main__":
    main()
