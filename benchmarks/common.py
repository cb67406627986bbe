"""
What the benchmark scripts share: command line, Django setup, data, timing,
query counting, memory, and the printed report.

A script calls ``start()`` first: it runs the script again once per topology
for ``--topology all``, copies the output to ``benchmarks/results/`` with
``--save``, creates the ``bench_crossdb_*`` databases and tables, and prints
the machine and the databases.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import gc
import hashlib
import io
import os
import platform
import pstats
import random
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
TOPOLOGIES = ("sqlite", "real")
BULK_BATCH = 5000


# Command line ---------------------------------------------------------------


def parser(description: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--topology", choices=(*TOPOLOGIES, "all"), default="sqlite")
    p.add_argument(
        "--save",
        action="store_true",
        help="also write the output to benchmarks/results/<script>-<topology>-<date>.txt",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="also print a cProfile of the cross-database variant (slower run)",
    )
    return p


def int_list(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def _without_topology(argv: list[str]) -> list[str]:
    rest: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--topology":
            skip = True
        elif not arg.startswith("--topology="):
            rest.append(arg)
    return rest


class _Tee(io.TextIOBase):
    def __init__(self, *streams: Any) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
            stream.flush()
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def start(args: argparse.Namespace, script: str) -> None:
    """Set up Django for ``args.topology`` (or run once per topology and exit)."""
    if args.topology == "all":
        codes = []
        for topology in TOPOLOGIES:
            argv = [sys.executable, sys.argv[0], "--topology", topology]
            codes.append(subprocess.call([*argv, *_without_topology(sys.argv[1:])]))
        sys.exit(max(codes))
    if args.save:
        RESULTS_DIR.mkdir(exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc)
        path = RESULTS_DIR / f"{script}-{args.topology}-{now:%Y-%m-%d}.txt"
        if path.exists():  # a run the docs may quote: keep it, name this one by its time too
            path = path.with_name(f"{script}-{args.topology}-{now:%Y-%m-%dT%H%M}.txt")
        out = open(path, "w")  # noqa: SIM115
        sys.stdout = _Tee(sys.__stdout__, out)  # type: ignore[assignment]
        sys.stderr = _Tee(sys.__stderr__, out)  # type: ignore[assignment]
    _hold_run_lock()
    os.environ["BENCH_TOPOLOGY"] = args.topology
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    import django

    django.setup()
    if args.topology == "real":
        _create_real_databases()
    from django.conf import settings
    from django.core.management import call_command

    for alias in settings.MIGRATED_ALIASES:
        call_command("migrate", database=alias, run_syncdb=True, verbosity=0)
    print_environment(script, args)


_LOCKS: list[Any] = []


def _hold_run_lock() -> None:
    """One benchmark at a time: they share the tables, the files and the CPUs.

    The lock (``benchmarks/.data/run.lock``) is held until the process exits.
    """
    import fcntl

    (BENCH_DIR / ".data").mkdir(exist_ok=True)
    handle = open(BENCH_DIR / ".data" / "run.lock", "w")  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("waiting for another benchmark run (benchmarks/.data/run.lock)", flush=True)
        began = time.monotonic()
        fcntl.flock(handle, fcntl.LOCK_EX)
        print(f"waited {time.monotonic() - began:.0f} s for another benchmark run", flush=True)
    _LOCKS.append(handle)


def _create_real_databases() -> None:
    import MySQLdb
    import psycopg
    from django.conf import settings

    with psycopg.connect(
        host="127.0.0.1", port=5432, user="postgres", dbname="postgres", autocommit=True
    ) as pg:
        found = pg.execute("SELECT 1 FROM pg_database WHERE datname = %s", [settings.PG_NAME])
        if found.fetchone() is None:
            pg.execute(f'CREATE DATABASE "{settings.PG_NAME}"')
    maria = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", passwd="")
    try:
        maria.cursor().execute(
            f"CREATE DATABASE IF NOT EXISTS `{settings.MARIADB_NAME}` CHARACTER SET utf8mb4"
        )
    finally:
        maria.close()


# Environment ----------------------------------------------------------------


def _first_line(path: str, prefix: str) -> str:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def _git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        diff = subprocess.run(
            ["git", "-C", str(REPO_DIR), "diff", "HEAD", "--", "src"],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "?"
    if not diff:
        return rev
    return f"{rev} + uncommitted src/ changes (diff sha1 {hashlib.sha1(diff).hexdigest()[:10]})"


def database_description(alias: str) -> str:
    from django.db import connections

    connection = connections[alias]
    settings_dict = connection.settings_dict
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            import sqlite3

            version = f"SQLite {sqlite3.sqlite_version}"
            where = Path(settings_dict["NAME"]).relative_to(REPO_DIR)
        else:
            cursor.execute("SELECT version()")
            version = str(cursor.fetchone()[0]).split(" on ")[0]
            if connection.vendor == "mysql":
                version = f"MariaDB/MySQL {version}"
            where = f"{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}"
    options = settings_dict.get("OPTIONS") or {}
    extra = " server_side_binding=True" if options.get("server_side_binding") else ""
    return f"{version}, {where}{extra}"


def _driver_versions() -> str:
    from django.conf import settings

    if settings.TOPOLOGY != "real":
        return ""
    import MySQLdb
    import psycopg

    mysql = "PyMySQL" if MySQLdb.__name__ == "pymysql" else "mysqlclient"
    return f" | psycopg {psycopg.__version__} | {mysql}"


def print_environment(script: str, args: argparse.Namespace) -> None:
    import django
    from django.conf import settings

    uname = os.uname()
    mem_kb = int(_first_line("/proc/meminfo", "MemTotal").split()[0] or 0)
    print(f"# {script}, topology {args.topology}")
    print(
        f"date:      {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}"
    )
    print(f"machine:   {uname.sysname} {uname.release} {uname.machine} | nproc {os.cpu_count()}")
    print(f"cpu:       {_first_line('/proc/cpuinfo', 'model name')}")
    print(f"memory:    {mem_kb / 1024 / 1024:.1f} GiB")
    print(
        f"software:  Python {platform.python_version()} | Django {django.get_version()}"
        f"{_driver_versions()} | crossdb at {_git_revision()}"
    )
    print(f"command:   {' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}")
    print(f"load:      {load_average()} (other processes share these CPUs)")
    print("databases:")
    for alias in settings.DATABASES:
        print(f"  {alias:8} {database_description(alias)}")
    print("tables:    Target -> default, Source -> source (CrossDBForeignKey to Target),")
    print("           SameTarget + SameSource -> same (models.ForeignKey, one database)")
    if settings.TOPOLOGY == "real":
        print("           'same' is PostgreSQL (the database of 'default'): the same-database")
        print("           baselines run on PostgreSQL, the cross-database variants read Source")
        print("           from MariaDB and Target from PostgreSQL.")
    print()


# Data -----------------------------------------------------------------------


def models() -> Any:
    from benchmarks.benchapp import models as bench_models

    return bench_models


def _alias(model: Any) -> str:
    from django.db import router

    return str(router.db_for_write(model))


def empty_queue(alias: str) -> None:
    """Empty crossdb's capture queue in ``alias`` (its pages too, but on SQLite)."""
    from django.db import connections

    from crossdb.capture_sql import QUEUE_TABLE

    connection = connections[alias]
    verb = "DELETE FROM" if connection.vendor == "sqlite" else "TRUNCATE TABLE"
    with connection.cursor() as cursor:
        cursor.execute(f"{verb} {connection.ops.quote_name(QUEUE_TABLE)}")


def empty_tables(*model_classes: Any) -> None:
    """Remove every row, without the ORM's deletion machinery."""
    from django.db import connections

    tables: dict[str, list[str]] = {}
    for model in model_classes:
        tables.setdefault(_alias(model), []).append(model._meta.db_table)
    for alias, names in tables.items():
        connection = connections[alias]
        quoted = [connection.ops.quote_name(name) for name in names]
        if connection.vendor == "postgresql":
            # One statement, as PostgreSQL wants for tables tied by a constraint.
            statements = [f"TRUNCATE TABLE {', '.join(quoted)}"]
        elif connection.vendor == "mysql":
            statements = [f"TRUNCATE TABLE {table}" for table in quoted]
        else:
            statements = [f"DELETE FROM {table}" for table in quoted]
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)


def empty_pending() -> None:
    from django.conf import settings
    from django.db import connections

    from crossdb.models import PendingPropagation

    for alias in settings.MIGRATED_ALIASES:
        connection = connections[alias]
        table = connection.ops.quote_name(PendingPropagation._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table}")


def pending_count() -> int:
    from django.conf import settings

    from crossdb.models import PendingPropagation

    return sum(
        PendingPropagation.objects.using(alias).count() for alias in settings.MIGRATED_ALIASES
    )


def analyze(*model_classes: Any) -> None:
    """Fresh planner statistics, so that autovacuum does not change plans mid-run."""
    from django.db import connections

    for model in model_classes:
        connection = connections[_alias(model)]
        table = connection.ops.quote_name(model._meta.db_table)
        statement = {"sqlite": "ANALYZE", "mysql": "ANALYZE TABLE"}.get(
            connection.vendor, "ANALYZE"
        )
        with connection.cursor() as cursor:
            cursor.execute(f"{statement} {table}")
            if connection.vendor == "mysql":
                cursor.fetchall()


def load_pairs(n: int, target_model: Any, source_model: Any, stride: int = 1) -> None:
    """``n`` targets (ids stride, 2 * stride, ...) and ``n`` sources, each pointing at a
    distinct target.

    The sources point at the targets in a shuffled (fixed) order, the same for
    every pair of models, so no variant reads its targets in key order.
    """
    empty_tables(source_model, target_model)
    ids = range(stride, stride * n + 1, stride)
    keys = list(ids)
    random.Random(20261124).shuffle(keys)
    target_model.objects.bulk_create(
        (target_model(id=i, name=f"target {i}") for i in ids), batch_size=BULK_BATCH
    )
    source_model.objects.bulk_create(
        (source_model(name=f"source {i}", user_id=key) for i, key in enumerate(keys, 1)),
        batch_size=BULK_BATCH,
    )
    analyze(target_model, source_model)


def load_cross(n: int, stride: int = 1) -> None:
    m = models()
    empty_pending()
    load_pairs(n, m.Target, m.Source, stride)


def load_same(n: int, stride: int = 1) -> None:
    m = models()
    load_pairs(n, m.SameTarget, m.SameSource, stride)


# Measuring ------------------------------------------------------------------


@dataclass
class Variant:
    key: str
    label: str
    run: Callable[[], Any]
    setup: Callable[[], None] | None = None
    check: Callable[[Any], None] | None = None


def time_variants(variants: Iterable[Variant], repeat: int) -> dict[str, list[float]]:
    """Run every variant ``repeat`` times, interleaved; return the times.

    ``times[key]`` holds wall-clock seconds (time.perf_counter), ``times[key + " cpu"]``
    this process's CPU seconds (time.process_time: without the database servers' work
    and without the time other processes took the CPU from it). ``setup`` and
    ``check`` are not timed, nor is freeing what ``run`` returned.
    """
    variants = list(variants)
    times: dict[str, list[float]] = {}
    for v in variants:
        times[v.key], times[f"{v.key} cpu"] = [], []
    for _ in range(repeat):
        for variant in variants:
            if variant.setup is not None:
                variant.setup()
            gc.collect()
            cpu_began = time.process_time()
            began = time.perf_counter()
            result = variant.run()
            elapsed = time.perf_counter() - began
            cpu = time.process_time() - cpu_began
            if variant.check is not None:
                variant.check(result)
            times[variant.key].append(elapsed)
            times[f"{variant.key} cpu"].append(cpu)
            del result
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def print_times(
    variants: Iterable[Variant],
    times: dict[str, list[float]],
    notes: dict[str, list[str]],
    titles: str,
) -> dict[str, float]:
    """One line per variant: median, min, max, then its ``notes``; return the medians."""
    medians = {key: median(values) for key, values in times.items()}
    print(f"{'':3}{'variant':36}{'median':>11} {'min':>11} {'max':>11} {'cpu':>11}  {titles}")
    for variant in variants:
        t = times[variant.key]
        cells = [
            f"{ms(value):>11}"
            for value in (medians[variant.key], min(t), max(t), medians[f"{variant.key} cpu"])
        ]
        print(
            f"{variant.key:3}{variant.label:38}{' '.join(cells)}  {'  '.join(notes[variant.key])}"
        )
    return medians


def capture_queries(run: Callable[[], Any], aliases: Iterable[str]) -> dict[str, list[str]]:
    """The SQL ``run`` sent, per database alias."""
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    with ExitStack() as stack:
        contexts = {
            alias: stack.enter_context(CaptureQueriesContext(connections[alias]))
            for alias in aliases
        }
        run()
    return {alias: [q["sql"] for q in ctx.captured_queries] for alias, ctx in contexts.items()}


def timed_queries(run: Callable[[], Any], aliases: Iterable[str]) -> list[tuple[str, str, float]]:
    """``(alias, sql, seconds)`` of each query ``run`` sent, timed around the driver's execute."""
    from django.db import connections

    timings: list[tuple[str, str, float]] = []

    def timer(alias: str) -> Callable[..., Any]:
        def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            began = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                timings.append((alias, sql, time.perf_counter() - began))

        return wrapper

    with ExitStack() as stack:
        for alias in aliases:
            stack.enter_context(connections[alias].execute_wrapper(timer(alias)))
        run()
    return timings


def print_query_timings(timings: list[tuple[str, str, float]], width: int = 110) -> None:
    """Total time per alias and per statement (its SQL cut to ``width``), the slowest first."""
    groups: dict[tuple[str, str], list[float]] = {}
    for alias, sql, seconds in timings:
        groups.setdefault((alias, " ".join(sql.split())[:width]), []).append(seconds)
    for alias in dict.fromkeys(alias for alias, _, _ in timings):
        spent = sum(s for a, _, s in timings if a == alias)
        print(f"{alias}: {sum(1 for a, _, _ in timings if a == alias)} queries, {ms(spent)}")
    ordered = sorted(groups.items(), key=lambda item: -sum(item[1]))
    for (alias, sql), values in ordered:
        print(f"  {alias:8}{len(values):>5} x {ms(sum(values)):>10}  {sql}")


def describe_queries(queries: dict[str, list[str]]) -> str:
    """``default 4 (SELECT 4), source 1 (SELECT 1)``; aliases with no query left out."""
    parts = []
    for alias, statements in queries.items():
        if not statements:
            continue
        verbs = Counter(sql.split(None, 1)[0].upper() for sql in statements)
        detail = ", ".join(f"{verb} {count}" for verb, count in verbs.most_common())
        parts.append(f"{alias} {len(statements)} ({detail})")
    return "; ".join(parts) or "none"


def peak_memory(run: Callable[[], Any]) -> int:
    """Bytes allocated by ``run`` at its peak (tracemalloc), beyond what existed before."""
    gc.collect()
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        result = run()
        peak = tracemalloc.get_traced_memory()[1] - baseline
        del result
    finally:
        if started:
            tracemalloc.stop()
    return peak


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def max_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def finish() -> None:
    print(f"process ru_maxrss at the end: {max_rss_mib():,.0f} MiB")
    print(f"load at the end: {load_average()}")


def print_profile(run: Callable[[], Any], title: str, lines: int = 30) -> None:
    """cProfile of one ``run``: the functions with the most own time, then by cumulative time."""
    profiler = cProfile.Profile()
    gc.collect()
    profiler.enable()
    result = run()
    profiler.disable()
    del result
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.strip_dirs().sort_stats(order).print_stats(lines)
        text = out.getvalue()
        body = text[text.find("   ncalls") :] if "   ncalls" in text else text
        total = f"{stats.total_tt:.3f}"  # type: ignore[attr-defined]
        print(f"--- profile: {title}, sorted by {order} (total {total} s under cProfile)")
        print(body.rstrip())
        print()


# Report ---------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def mib(size: int) -> str:
    return f"{size / 1024 / 1024:,.1f} MiB"


def heading(text: str) -> None:
    print(f"## {text}")


def verdict(name: str, value: float, limit: float) -> bool:
    ok = value <= limit
    print(f"{'PASS' if ok else 'FAIL'}  {name} = {value:.2f} (target <= {limit:.2f})")
    return ok


def exception_summary(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__module__}.{type(exc).__qualname__}: {first[:200]}"


# Fresh processes, memory of one process, a quiet machine ---------------------


def add_routes(topology: str, routes: dict[str, str]) -> None:
    """Add ``routes`` to ``CROSSDB_ROUTES``, before ``start()`` or ``django.setup()``.

    For a script whose own models are not routed by ``settings.py``. It changes the
    settings module, not ``django.conf.settings``: loading those now would set the
    process's TZ (Django's TIME_ZONE) before ``start()`` names the results file.
    """
    os.environ["BENCH_TOPOLOGY"] = topology
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    from benchmarks import settings as bench_settings

    bench_settings.CROSSDB_ROUTES.update(routes)


def setup_child(topology: str, routes: dict[str, str] | None = None) -> None:
    """Django in a measuring subprocess: no migrate, no printed environment."""
    add_routes(topology, routes or {})
    import django

    django.setup()


def proc_status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB: ``VmHWM`` (peak resident size), ``VmRSS``."""
    value = _first_line("/proc/self/status", f"{field}:")
    return int(value.split()[0]) if value != "?" else 0


def wait_for_quiet(threshold: float = 1.0, poll: float = 30, limit: float = 900) -> None:
    """Wait until the 1-minute load average is below ``threshold`` (at most ``limit`` seconds)."""
    began = time.monotonic()
    while os.getloadavg()[0] >= threshold:
        waited = time.monotonic() - began
        if waited >= limit:
            print(f"load: still {load_average()} after {waited:.0f} s: running anyway")
            return
        print(f"load: {load_average()}, waiting for a 1-minute load < {threshold}", flush=True)
        time.sleep(poll)
    print(f"load: {load_average()} after waiting {time.monotonic() - began:.0f} s")
