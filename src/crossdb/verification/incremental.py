"""
``verify_links --incremental``: checking only the references written since the
previous runs, as logged by the triggers of ``crossdb.capture_log_sql`` in
``crossdb.WrittenReference`` (links with ``capture_deletes=True``).

A run reads the link's log in id order, a page at a time, with the *current*
key of each logged source row (later updates, NULLs and deleted rows are then
right): one query per page joining the log to the source's table when its
primary key is an integer, else the log and then the rows by primary key. It
checks the keys as the full scan does (``Verifier.probe``, a second probe
before an orphan is reported, pending propagations). Only once a page's check
has finished does it delete, by id, the rows it is done with:

- a row logged at least ``CROSSDB_INCREMENTAL_RECHECK_DELAY`` seconds before
  the page was read (the database's clock, ``capture_log_sql.LOG_CLOCK``) whose
  target exists: a deletion of that target that was not committed when the
  reference was written, and whose propagation did not see it, has committed
  since if the delay is longer than the transactions writing references and
  deleting targets, so the check saw it;
- a row whose source row is gone or holds NULL: nothing refers.

A younger row stays for a later run, which checks it again; a row whose
target is missing stays, so every run reports it until repaired. Rows are
never deleted by id range: a row committed late may hold an id inside a page
it was not read with. One DELETE per page at most, in raw SQL (bookkeeping
rows, not the user's: no signal sees them). A process killed mid-run has
deleted only rows it had checked: the next run checks the others.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Generator, Sequence
from dataclasses import dataclass, fields
from typing import Any

from django.db import connections

from crossdb.batching import by_keys, chunks, is_integer
from crossdb.capture_log_sql import LOG_CLOCK, LOG_TABLE
from crossdb.conf import capture_settings
from crossdb.fields import CrossDBForeignKey
from crossdb.verification.engine import Verifier
from crossdb.verification.links import Partition, VerificationError, link_label
from crossdb.verification.report import LinkResult

# Ids per DELETE: integers written into the statement, so no parameter limit
# applies; this keeps a statement under a megabyte (MariaDB's max_allowed_packet).
DELETE_CHUNK = 50_000

# A logged row: its id, the source row's current key (None: gone or NULL), and 1
# when it was logged at least the delay before this read, else 0 (as SQL gives it).
_Row = tuple[int, Any, int]


@dataclass
class IncrementalResult(LinkResult):
    logged: int = 0  # log rows read by the run
    awaiting_recheck: int = 0  # log rows it read and left (younger than the delay, or orphans)

    def as_dict(self) -> dict[str, Any]:
        return {
            **super().as_dict(),
            "mode": "incremental",
            "logged": self.logged,
            "awaiting_recheck": self.awaiting_recheck,
        }


class IncrementalVerifier(Verifier):
    """Checks the references of one link logged since the previous runs; see the module."""

    def __init__(self, field: CrossDBForeignKey, *, delay: float | None = None, **kwargs: Any):
        if not field.capture_deletes:
            raise VerificationError(
                f"{link_label(field)} has no capture_deletes=True, so its written references "
                f"are not logged: run a full `manage.py verify_links {link_label(field)}`.",
                label=link_label(field),
            )
        super().__init__(field, **kwargs)
        self.label = link_label(field)
        self.delay = capture_settings.INCREMENTAL_RECHECK_DELAY if delay is None else delay
        self.logged = 0
        self.kept = 0
        # The target keys the probes of the current page found (see probe()).
        self._found: set[Any] = set()

    def estimated_total(self) -> int | None:
        return None  # the log's length is not worth a COUNT before the run

    def probe(self, keys: Sequence[Any], bounds: tuple[Any, Any] | None = None) -> set[Any]:
        # Verifier.run() probes each page, and re-probes its suspects, between two
        # steps of pages(): what they found tells _settle() which keys are alive.
        found = super().probe(keys, bounds)
        self._found |= found
        return found

    def run(self) -> IncrementalResult:
        self.logged = self.kept = 0
        result = super().run()
        values = {f.name: getattr(result, f.name) for f in fields(LinkResult)}
        return IncrementalResult(**values, logged=self.logged, awaiting_recheck=self.kept)

    def pages(self) -> Generator[dict[Any, int], None, None]:
        """``{key: logged rows holding it}`` for each page of the log, in id order."""
        reader = LogReader(self)
        last = 0
        while True:
            logged = reader.page(last)
            if not logged:
                return
            last = logged[-1][0]
            self.logged += len(logged)
            page = Counter(key for _, key, _ in logged if key is not None)
            self._found = set()
            if page:
                # Keys in order, as Verifier.run() expects when it probes a range.
                yield dict(sorted(page.items())) if self.pages_by_key else page
            self._settle(logged, {key for key in page if key not in self._found})
            if len(logged) < self.batch_size:
                return

    def _settle(self, logged: Sequence[_Row], missing: Collection[Any]) -> None:
        """Delete the page's rows this check is done with (see the module)."""
        done = [
            row_id for row_id, key, due in logged if key is None or (due and key not in missing)
        ]
        self.kept += len(logged) - len(done)
        if not done:
            return
        connection = connections[self.source_db]
        table, id_column = connection.ops.quote_name(LOG_TABLE), connection.ops.quote_name("id")
        with connection.cursor() as cursor:
            for chunk in chunks(done, DELETE_CHUNK):
                # The ids are the log's own integers: written in the statement, they
                # cost nothing to bind (10,000 parameters took longer than the DELETE).
                ids = ",".join(map(str, map(int, chunk)))
                cursor.execute(f"DELETE FROM {table} WHERE {id_column} IN ({ids})")


class LogReader:
    """
    The pages of one link's log with the source rows' current keys, in SQL built
    once per run and executed with each page's start: the ORM cannot join on a
    cast, and building a query per page costs more than running it.
    """

    def __init__(self, verifier: IncrementalVerifier) -> None:
        field = verifier.field
        self.verifier = verifier
        self.connection = connection = connections[verifier.source_db]
        qn = connection.ops.quote_name
        opts = field.model._meta
        self.joined = is_integer(opts.pk)
        vendor = connection.vendor
        due = _DUE[vendor]
        self.params: list[Any] = [_delay_parameter(vendor, verifier.delay), verifier.label]
        log, source = qn(LOG_TABLE), qn(opts.db_table)
        if self.joined:
            # One lookup of the source's primary key per logged row, in the same query.
            columns = f"s.{qn(field.column)}"
            pk = f"CAST(l.source_pk AS {_INTEGER[vendor]})"
            join = f" LEFT JOIN {source} s ON s.{qn(opts.pk.column)} = {pk}"
        else:
            columns, join = "l.source_pk", ""
        self.sql = (
            f"SELECT l.{qn('id')}, {columns}, CASE WHEN l.logged_at <= {due} THEN 1 ELSE 0 END "
            f"FROM {log} l{join} WHERE l.link = %s AND l.{qn('id')} > %s "
            f"ORDER BY l.{qn('id')} LIMIT {int(verifier.batch_size)}"
        )
        # The key column's converters (a UUID from text, say); none for integers.
        query = field.model._base_manager.using(verifier.source_db).all().query
        self.compiler = query.get_compiler(using=verifier.source_db)
        key = field.get_col("s")
        self.converters = self.compiler.get_converters([None, key]) if self.joined else {}

    def page(self, after: int) -> list[_Row]:
        with self.connection.cursor() as cursor:
            cursor.execute(self.sql, [*self.params, after])
            rows = cursor.fetchall()
        if not self.joined:
            return self._current_keys(rows)
        if self.converters:
            return [tuple(row) for row in self.compiler.apply_converters(rows, self.converters)]
        return list(rows)

    def _current_keys(self, rows: Sequence[Any]) -> list[_Row]:
        """The rows' current keys, read by primary key (not an integer: no cast to join on)."""
        verifier = self.verifier
        field = verifier.field
        to_python = field.model._meta.pk.to_python
        logged = [(row_id, to_python(pk), due) for row_id, pk, due in rows]
        manager = field.model._base_manager.using(verifier.source_db)
        holding = manager.filter(**{f"{field.attname}__isnull": False})
        keys: dict[Any, Any] = {}
        pks = list({pk for _, pk, _ in logged})
        for chunk in by_keys(holding.values_list("pk", field.attname), "pk", pks):
            keys.update(chunk)
        return [(row_id, keys.get(pk), due) for row_id, pk, due in logged]


# ``logged_at`` at least the delay (the parameter) before this statement, by LOG_CLOCK
# (SQLite's with the delay as a modifier, and ``%%`` for Django's placeholders).
_DUE = {
    "postgresql": f"{LOG_CLOCK['postgresql']} - %s * INTERVAL '1 microsecond'",
    "mysql": f"{LOG_CLOCK['mysql']} - INTERVAL %s MICROSECOND",
    "sqlite": "STRFTIME('%%Y-%%m-%%d %%H:%%M:%%f', 'NOW', %s)",
}
_INTEGER = {"postgresql": "BIGINT", "mysql": "SIGNED", "sqlite": "INTEGER"}


def _delay_parameter(vendor: str, delay: float) -> Any:
    if vendor == "sqlite":
        return f"-{delay:f} seconds"  # a modifier of SQLite's date functions
    return round(delay * 1_000_000)  # microseconds


def split_logged(
    links: Sequence[CrossDBForeignKey], partition: Partition | None = None
) -> tuple[list[CrossDBForeignKey], list[str]]:
    """
    The links an incremental run checks (``capture_deletes=True``) and the labels
    of those it skips; a VerificationError when none is left or with a partition.
    """
    if partition is not None:
        raise VerificationError(
            "--partition cannot be combined with --incremental, which reads only the logged "
            "references.",
            option="--partition",
        )
    logged = [link for link in links if link.capture_deletes]
    if not logged:
        raise VerificationError(
            "--incremental: none of the selected links has capture_deletes=True, so no "
            "written reference is logged; run a full verify_links.",
            option="--incremental",
        )
    return logged, [link_label(link) for link in links if not link.capture_deletes]
