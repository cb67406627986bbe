"""
Finding (and repairing) references whose target row does not exist.

One ``Verifier`` checks one link (a CrossDBForeignKey or CrossDBOneToOneField)
and is shared by ``manage.py verify_links`` and the database-tagged system
check. It streams: memory holds one page of keys, whatever the table size.

Keys are compared exactly, in Python, never by a column's collation: under
MariaDB's utf8mb4_unicode_ci ``'x1'``, ``'X1'`` and ``'x1 '`` are equal, while
the target (PostgreSQL, SQLite) holds three different keys.

- The source is read in pages, and each page's keys are counted in Python.
  Keys the database compares exactly (integers, and UUIDs stored as such: see
  ``pages_by_key()``) are read in key order, ``key > last ORDER BY key LIMIT
  n``: a page holds neighbouring keys, which one range probe covers when they
  are dense. Other keys (text) are read in primary key order, ``pk > last
  ORDER BY pk LIMIT n``: the primary key is unique, so no row is skipped at a
  page end, as rows whose keys are equal under the key column's collation
  (``'x1'`` and ``'X1'`` under utf8mb4_unicode_ci) would be by ``key > last``.
  Paging does not rely on server-side cursors (``.iterator()`` does not stream
  with mysqlclient on MariaDB).
- Each page's distinct keys are probed in the target's database with an
  ordinary, indexed predicate: integer keys that are dense with ``BETWEEN first
  AND last`` (the rows in the range come back), anything else as one parameter
  (``= ANY(array)``, a JSON array for keys ``json_each()`` carries exactly) or
  ``IN (...)`` lists chunked by the backend's parameter limit. Ranges are never
  used for character keys: two databases need not sort strings the same way. The
  keys the probe returns are matched to the page's in Python, exactly (a
  ``BINARY``/``COLLATE`` predicate would not use the index).
- A key found missing is probed again before it is reported, and once more
  inside the transaction that repairs it, so a target created meanwhile never
  loses its references. A repair then reads the rows holding the key, keeps
  those whose key is exactly it and changes them by primary key.
- Keys whose deletion is recorded in ``crossdb.PendingPropagation``, or captured
  by the link's triggers in ``crossdb.CapturedDeletion``, but not yet applied are
  reported as pending, not as orphans.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Generator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing
from operator import itemgetter
from typing import Any

from django.db import DatabaseError, connections, models, router, transaction
from django.db.models import F, Max, Min, Q, UUIDField
from django.utils.functional import cached_property

from crossdb import routers
from crossdb.batching import (
    InJSONArray,
    KeysParameter,
    batch_size,
    chunks,
    is_integer,
    keys_lookup,
    storable_keys,
)
from crossdb.capture_queue import BATCH, batch_keys
from crossdb.conf import crossdb_settings
from crossdb.fields import CrossDBForeignKey
from crossdb.verification.compiled import AfterSlot, CompiledQuery, FromSlot, Slot, UpToSlot
from crossdb.verification.links import Partition, VerificationError, link_label
from crossdb.verification.progress import estimated_rows
from crossdb.verification.report import LinkResult, has_capture_table, has_pending_table

# Source rows per page: each page costs one query per database and memory holds
# one page (a few MB); below this, round trips show in the time of a large scan.
DEFAULT_BATCH_SIZE = 50_000
# Keys missing at the first probe are re-checked in batches of this many: one
# query per batch, and the memory they hold does not grow with the table.
RECHECK_BATCH_SIZE = 10_000
# A page of integer keys spanning at most this many times its size is probed by range.
DENSE_SPAN = 2


class Verifier:
    """Checks one link; see the module docstring for how."""

    def __init__(
        self,
        field: CrossDBForeignKey,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        sample: int = 10,
        partition: Partition | None = None,
        max_rows: int | None = None,
        collect_limit: int = 0,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.field = field
        # A bounded check (max_rows) need not read a page past its bound.
        self.batch_size = batch_size if max_rows is None else max(1, min(batch_size, max_rows))
        self.sample = sample
        self.partition = partition
        self.max_rows = max_rows
        # Keep the keys of up to this many orphan rows, for a repair.
        self.collect_limit = collect_limit
        self.progress = progress
        self.source_db = routers.source_db_for_read(field)
        self.target_db = routers.target_db_for_read(field)
        self.key_name = field.target_field.attname
        self.pages_by_key = pages_by_key(field, self.source_db)
        self._partition: Q | None = None  # computed once: its bounds come from the data

    # Source side ---------------------------------------------------------------

    def source_rows(self) -> models.QuerySet[Any]:
        field = self.field
        queryset = field.model._base_manager.using(self.source_db).filter(
            **{f"{field.attname}__isnull": False}
        )
        if self.partition is not None and self.partition.count > 1:
            if self._partition is None:
                self._partition = self._partition_q(queryset)
            queryset = queryset.filter(self._partition)
        return queryset  # type: ignore[no-any-return]

    def estimated_total(self) -> int | None:
        """The source's rows by the planner's statistics (its share of them for a part)."""
        total = estimated_rows(self.field.model, self.source_db)
        if total is None or self.partition is None:
            return total
        return total // self.partition.count

    def databases(self, repair: str | None = None) -> list[str]:
        """
        The databases a run reads, and with ``repair`` also those it changes:
        ``"delete"`` reaches every database holding rows that refer, through any
        chain of relations, to the deleted rows (their ``on_delete`` runs).
        """
        found = {self.source_db, self.target_db}
        if repair == "delete":
            seen: set[type[models.Model]] = set()
            models_left: list[type[models.Model]] = [self.field.model]
            while models_left:
                model = models_left.pop()
                if model in seen:
                    continue
                seen.add(model)
                for relation in model._meta.related_objects:
                    related = relation.related_model
                    if isinstance(relation.field, CrossDBForeignKey):
                        found.add(routers.source_db_for_write(relation.field))
                    else:
                        found.add(router.db_for_write(related))
                    models_left.append(related)
        return sorted(found)

    def _partition_q(self, queryset: models.QuerySet[Any]) -> Q:
        """
        Part K of N disjoint ranges of the column pages follow, so a part is a
        run of pages: the key when pages follow it (a key's rows are then all in
        one part), else the primary key. Either column compares exactly, so no
        row can fall in two parts or in none.
        """
        assert self.partition is not None
        index, count = self.partition.index, self.partition.count
        if self.pages_by_key:
            return _equal_runs(queryset, self.field.attname, index, count)
        if is_integer(self.field.model._meta.pk):
            bounds = queryset.aggregate(low=Min("pk"), high=Max("pk"))
            if bounds["low"] is None:
                return Q(pk__in=[])
            low, high = bounds["low"], bounds["high"]
            width = (high - low) // count + 1
            start = low + index * width
            return Q(pk__gte=start, pk__lt=start + width)
        return _equal_runs(queryset, "pk", index, count)

    def pages(self) -> Generator[dict[Any, int], None, None]:
        """
        ``{key: rows holding it}`` for each page of at most ``batch_size`` source
        rows, in key order when ``pages_by_key`` is set, else in primary key
        order; keys are counted in Python, exactly.

        A page is read with one row more, which tells whether another page
        follows. The pages differ only in the key or primary key they start
        after, so each query is compiled once.

        When both databases are servers, the next page is read in a worker
        thread while the caller probes the target with this one, so the two
        servers work at the same time. Not with SQLite: it runs in this process
        and releases the interpreter lock row by row, so two threads would
        mostly wait for each other (measured twice as slow).
        """
        with ExitStack() as stack:
            worker: ThreadPoolExecutor | None = None
            if self.reads_ahead():
                # Each connection is used by one thread at a time: the worker the
                # source's, the caller the target's. Closing this generator waits
                # for a read in flight.
                worker = stack.enter_context(
                    ThreadPoolExecutor(max_workers=1, thread_name_prefix="crossdb-verify")
                )
            connection = connections[self.source_db]

            def read(query: CompiledQuery, *values: Any) -> Callable[[], list[Any]]:
                if worker is None:
                    return lambda: query.fetch(connection.cursor(), *values)
                cursor = connection.cursor()  # made here: Django checks the thread here
                return worker.submit(query.fetch, cursor, *values).result

            if self.pages_by_key:
                yield from self._pages_in_key_order(read)
            else:
                yield from self._pages_in_pk_order(read)

    def _pages_in_pk_order(self, read: _Read) -> Generator[dict[Any, int], None, None]:
        size = self.batch_size
        rows = self.source_rows().order_by("pk").values_list("pk", self.field.attname)
        bound = Slot()
        first = CompiledQuery(rows[: size + 1])
        after = CompiledQuery(rows.filter(AfterSlot(F("pk"), bound))[: size + 1], bound)
        prepare_pk = self.field.model._meta.pk.get_db_prep_value
        connection = connections[self.source_db]
        pending = read(first)
        while page := pending():
            if len(page) <= size:
                yield Counter(map(itemgetter(1), page))
                return
            pending = read(after, prepare_pk(page[size - 1][0], connection))
            yield Counter(map(itemgetter(1), page[:size]))

    def _pages_in_key_order(self, read: _Read) -> Generator[dict[Any, int], None, None]:
        """
        The key column in key order (its index read as is). When the row after
        the page holds the page's last key, that key's rows are left for the
        next page, which starts at it; when they fill the whole page, they are
        read in pages of their own, by primary key.
        """
        attname = self.field.attname
        column = F(attname)
        size = self.batch_size
        rows = self.source_rows().order_by(attname).values_list(attname)
        bound = Slot()
        first = CompiledQuery(rows[: size + 1])
        starting_at = CompiledQuery(rows.filter(FromSlot(column, bound))[: size + 1], bound)
        after = CompiledQuery(rows.filter(AfterSlot(column, bound))[: size + 1], bound)
        prepare = self.field.get_db_prep_value
        connection = connections[self.source_db]
        pending = read(first)
        while keys := list(map(itemgetter(0), pending())):
            if len(keys) <= size:
                yield Counter(keys)
                return
            last = keys[size - 1]
            if keys[size] != last:
                page, next_page = Counter(keys[:size]), after
            else:
                # Equal keys are neighbours: walk back to the first row of the last key
                # (equality, not order: MariaDB does not sort UUIDs as Python does).
                cut = size - 1
                while cut and keys[cut - 1] == last:
                    cut -= 1
                if not cut:
                    yield from self._pages_of_one_key(last)
                    pending = read(after, prepare(last, connection))
                    continue
                page, next_page = Counter(keys[:cut]), starting_at
            pending = read(next_page, prepare(last, connection))
            yield page

    def _pages_of_one_key(self, key: Any) -> Generator[dict[Any, int], None, None]:
        """The rows of one key that fills pages, a page at a time, in primary key order."""
        size = self.batch_size
        rows = self.source_rows().filter(**{self.field.attname: key}).order_by("pk")
        pks = list(rows.values_list("pk", flat=True)[: size + 1])
        while len(pks) > size:
            yield {key: size}
            pks = list(rows.filter(pk__gt=pks[size - 1]).values_list("pk", flat=True)[: size + 1])
        if pks:
            yield {key: len(pks)}

    def reads_ahead(self) -> bool:
        """
        Whether ``pages()`` reads the next page while the caller probes this one:
        for a full scan between two database servers (a bounded check stops
        after a page or two and would only read one too many).
        """
        vendors = {connections[self.source_db].vendor, connections[self.target_db].vendor}
        return (
            self.max_rows is None and self.source_db != self.target_db and "sqlite" not in vendors
        )

    # Target side ---------------------------------------------------------------

    def _target_keys(self) -> models.QuerySet[Any]:
        target = self.field.remote_field.model._base_manager.using(self.target_db)
        return target.values_list(self.key_name)  # type: ignore[no-any-return]

    @cached_property
    def _range_probe(self) -> CompiledQuery:
        low, high = Slot(), Slot()
        key = F(self.key_name)
        queryset = self._target_keys().filter(FromSlot(key, low), UpToSlot(key, high))
        return CompiledQuery(queryset, low, high)

    @cached_property
    def _keys_probe(self) -> tuple[type[KeysParameter], CompiledQuery] | None:
        lookup = keys_lookup(self.target_db)
        if lookup is None:
            return None
        keys = Slot()
        return lookup, CompiledQuery(
            self._target_keys().filter(lookup(F(self.key_name), keys)), keys
        )

    def existing(self, keys: Collection[Any]) -> set[Any]:
        """The keys among ``keys`` that exist in the target's database."""
        keys = list(keys)
        return self.probe(keys).intersection(keys)

    def probe(self, keys: Sequence[Any], bounds: tuple[Any, Any] | None = None) -> set[Any]:
        """
        The target keys that exist among ``keys`` (a range probe returns the
        others in the range too): one query, or one per chunk. ``bounds`` is
        ``(min(keys), max(keys))`` when the caller already knows it.
        """
        keys = storable_keys(keys, self.target_db)
        if not keys:
            return set()
        if is_integer(self.field.target_field):
            first, last = bounds or (min(keys), max(keys))
            if last - first + 1 <= DENSE_SPAN * len(keys):
                return set(map(itemgetter(0), self._range_probe.execute(first, last)))
        found: set[Any] = set()
        probe = self._keys_probe
        if probe is not None and (probe[0] is not InJSONArray or InJSONArray.accepts(keys)):
            lookup, query = probe
            connection = connections[self.target_db]
            for chunk in chunks(keys, crossdb_settings.PREFETCH_BATCH_SIZE):
                parameter = lookup.parameter(chunk, self.field.target_field, connection)
                found.update(map(itemgetter(0), query.execute(parameter)))
            return found
        # No one-parameter form on this backend, or keys JSON cannot carry exactly: IN lists.
        target = self.field.remote_field.model._base_manager.using(self.target_db)
        in_keys = f"{self.key_name}__in"
        for chunk in chunks(keys, batch_size(self.target_db)):
            found.update(target.filter(**{in_keys: chunk}).values_list(self.key_name, flat=True))
        return found

    def pending_keys(self) -> set[Any]:
        """
        Keys whose deletion is recorded but not yet propagated to this link: in
        ``PendingPropagation`` rows, or captured by its triggers (``CapturedDeletion``).
        """
        from crossdb.models import CapturedDeletion, PendingPropagation

        if not has_pending_table(self.target_db):
            return set()  # not migrated there; check crossdb.E008 says so when it matters
        to_python = self.field.target_field.to_python
        rows = PendingPropagation.objects.using(self.target_db).filter(
            source_model=self.field.model._meta.label, source_field=self.field.name
        )
        keys = {to_python(key) for row in rows for key in row.keys}
        if self.field.capture_deletes and has_capture_table(self.target_db):
            captured = CapturedDeletion.objects.using(self.target_db).filter(
                kind__in=("delete", BATCH), link=link_label(self.field)
            )
            for kind, key in captured.values_list("kind", "target_key"):
                keys.update(map(to_python, batch_keys(key) if kind == BATCH else [key]))
        return keys

    # The scan --------------------------------------------------------------------

    def run(self) -> LinkResult:
        result = LinkResult(self.field, self.source_db, self.target_db)
        pending = self.pending_keys()
        # Keys missing at the first probe, with their rows, re-checked a batch at
        # a time before they are reported: a target created since is not an orphan.
        suspects: dict[Any, int] = {}
        repairable: set[Any] = set()

        def confirm() -> None:
            created_since = self.existing(suspects)
            for key, rows in suspects.items():
                if key in created_since:
                    continue
                if key in pending:
                    result.pending += rows
                    continue
                result.orphans += rows
                # A key may be missing on several pages: show and keep it once.
                if len(result.sample) < self.sample and key not in result.sample:
                    result.sample.append(key)
                # Past the limit the repair is refused anyway: stop holding keys.
                if result.orphans <= self.collect_limit and key not in repairable:
                    repairable.add(key)
                    result.repairable_keys.append(key)
            suspects.clear()

        with closing(self.pages()) as pages:
            for page in pages:
                keys = list(page)
                # Integer keys in key order: the first and last bound a range probe.
                bounds = (keys[0], keys[-1]) if self.pages_by_key else None
                found = self.probe(keys, bounds)
                for key in page:
                    if key not in found:
                        suspects[key] = suspects.get(key, 0) + page[key]
                result.checked += sum(page.values())
                if len(suspects) >= RECHECK_BATCH_SIZE:
                    confirm()
                if self.progress is not None:
                    self.progress(result.checked)
                if self.max_rows is not None and result.checked >= self.max_rows:
                    result.complete = False
                    break
        if suspects:
            confirm()
        return result

    # Repairs -----------------------------------------------------------------------

    def repair(self, keys: Iterable[Any], mode: str) -> int:
        """
        Set to NULL (``"set-null"``) or delete (``"delete"``, through the ORM so
        the source database's own cascades run) the rows referring to ``keys``,
        in batches, each in a transaction that re-checks the targets first.

        The rows are those whose key is exactly a missing one, compared in
        Python: under a case-insensitive or PAD SPACE collation
        ``key__in=["x1"]`` also matches ``X1`` and ``x1 ``, whose targets may
        exist. They are locked, then changed by primary key.
        """
        if mode not in ("set-null", "delete"):
            raise VerificationError(f"Unknown repair {mode!r}: use set-null or delete.")
        if mode == "set-null" and not self.field.null:
            raise VerificationError(
                f"{link_label(self.field)} is not nullable: --fix set-null cannot repair it."
            )
        attname = self.field.attname
        changed = 0
        manager = self.field.model._base_manager.using(self.source_db)
        size = min(self.batch_size, batch_size(self.source_db) or 1000)
        for chunk in chunks(list(dict.fromkeys(keys)), size):
            with transaction.atomic(using=self.source_db):
                alive = self.existing(chunk)
                dangling = {key for key in chunk if key not in alive}
                if not dangling:
                    continue
                holding = manager.filter(**{f"{attname}__in": list(dangling)})
                rows = holding.select_for_update().values_list("pk", attname)
                pks = [pk for pk, key in rows if key in dangling]
                for pk_chunk in chunks(pks, size):
                    exact = manager.filter(pk__in=pk_chunk)
                    if mode == "set-null":
                        changed += exact.update(**{attname: None})
                    else:
                        changed += exact.delete()[0]
        return changed


_Read = Callable[..., Callable[[], list[Any]]]


def pages_by_key(field: CrossDBForeignKey, alias: str) -> bool:
    """
    Whether ``field``'s column on ``alias`` compares keys exactly in SQL, so that
    ``key > last`` skips no row: integers, and UUIDs in a column of their own
    type (PostgreSQL's ``uuid``, MariaDB's ``UUID`` from 10.7, both compared as
    128-bit values) or in SQLite's ``char(32)`` under its default ``BINARY``
    collation (Django writes them as lowercase hex). On MySQL a UUID is
    ``char(32)`` under the table's collation, so text rules apply.
    """
    key = field.target_field
    if is_integer(key):
        return True
    if isinstance(key, UUIDField):
        connection = connections[alias]
        return bool(connection.features.has_native_uuid_field or connection.vendor == "sqlite")
    return False


def _equal_runs(queryset: models.QuerySet[Any], column: str, index: int, count: int) -> Q:
    """
    Run ``index`` of ``count`` runs of equal length of ``queryset``'s rows sorted
    by ``column`` (the rows of one value all in the run where it starts).
    """
    values = queryset.order_by(column).values_list(column, flat=True)
    total = values.count()
    start_at, end_at = index * total // count, (index + 1) * total // count
    if start_at >= end_at:
        return Q(pk__in=[])
    condition = Q(**{f"{column}__gte": values[start_at]}) if start_at else Q()
    if end_at < total:
        condition &= Q(**{f"{column}__lt": values[end_at]})
    return condition


def connection_error(alias: str) -> str | None:
    """Why ``alias`` cannot be reached (the driver's first line), None when it can."""
    try:
        connections[alias].ensure_connection()
    except DatabaseError as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    return None
