"""
``select_related()`` across databases, as a second step.

``QuerySet.select_related()`` only records names (``Query.add_select_related``
builds a tree of dicts in ``query.select_related``, or sets it to ``True``
when called without arguments); the SQL compiler turns them into joins
(``SQLCompiler.get_related_selections``) when the query runs. A join cannot
reach a table of another database, so ``CrossDBQuerySetMixin`` splits that
tree when the queryset is evaluated, never before:

- the relations inside the source's database stay in ``query.select_related``
  and are joined in SQL, as Django would;
- each relation through a cross-database field becomes a prefetch lookup,
  loaded by Django's ``prefetch_related_objects`` through the field's
  descriptor (``get_prefetch_querysets``): one query per target database per
  batch of keys. The relations inside the target's database beyond it are
  joined by that query (``Prefetch(path, queryset=...select_related(...))``),
  and a further cross-database hop is one more lookup.

``Employee.objects.select_related("user")`` reads the employees, then the
users they point at; ``Parcel.objects.select_related("order__customer__user")``
reads the parcels, then the orders joined to their customers, then the users.
The rows are those of the queryset without ``select_related``: no INNER JOIN
drops a row whose key dangles; reading such a relation raises the field's
``DanglingReference``.

Without arguments, ``select_related()`` follows what Django would (the
non-null forward relations, ``query.max_depth`` deep) minus the
cross-database fields: it joins what one database holds and loads nothing
from another.

Only ``Query.select_related`` (its three forms), ``Query.max_depth``,
``Query.get_select_mask()``, ``ModelIterable`` and the iterable's
``chunked_fetch``/``chunk_size`` arguments are relied on: the same in
Django 5.2, 6.0 and 6.1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from itertools import islice
from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldDoesNotExist
from django.db import connections
from django.db.models import Model, Prefetch, QuerySet, prefetch_related_objects
from django.db.models.constants import LOOKUP_SEP
from django.db.models.query import ModelIterable

from crossdb import routers
from crossdb.batching import fetch_by_keys, is_integer
from crossdb.conf import crossdb_settings

if TYPE_CHECKING:
    from crossdb.fields import CrossDBForeignKey

Tree = dict[str, Any]
Lookup = str | Prefetch  # type: ignore[type-arg]

CHUNK_SIZE = 2000
"""Rows per chunk under ``.iterator()`` without ``chunk_size``: Django's own default."""


@dataclass(frozen=True)
class Plan:
    """What a queryset's ``select_related`` becomes: joins, then lookups loaded per database."""

    joins: Tree | bool
    lookups: tuple[Lookup, ...]
    fields: tuple[CrossDBForeignKey, ...] = ()
    hops: tuple[CrossDBForeignKey, ...] = ()
    """First hops from the queryset's model, loaded by ``load_hop()`` before ``lookups``."""

    def stripped(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """``queryset`` with only the joins one database can make."""
        clone = queryset._clone()  # type: ignore[attr-defined]
        clone.query.select_related = self.joins or False
        return clone  # type: ignore[no-any-return]

    def prefetching(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """``stripped()``, prefetching the relations across databases before the caller's
        lookups: Django's ``aiterator()`` prefetches each chunk."""
        clone: Any = self.stripped(queryset)
        hops = [field.name for field in self.hops]
        clone._prefetch_related_lookups = (*hops, *self.lookups, *clone._prefetch_related_lookups)
        return clone  # type: ignore[no-any-return]

    def load(self, instances: list[Model]) -> None:
        """The second step: every cross-database relation of ``instances``, per database."""
        if not instances:
            return
        for field in self.hops:
            load_hop(instances, field)
        if self.lookups:
            prefetch_related_objects(instances, *self.lookups)

    def databases(self, source: str) -> set[str] | None:
        """The aliases both steps read, or None when the routers may answer per instance."""
        if routers.hints_matter():
            return None
        aliases = {source}
        for field in self.fields:
            aliases.add(routers.target_db_for_read(field))
        return aliases


def plan(queryset: QuerySet[Any]) -> Plan | None:
    """How to load ``queryset``'s ``select_related``; None when SQL can do it all."""
    query = queryset.query
    requested = query.select_related
    if requested is False or not issubclass(queryset._iterable_class, ModelIterable):
        return None
    if requested is True:
        joins = default_joins(query)
        return None if joins is None else Plan(joins, ())
    if crossdb_settings.SELECT_RELATED == "raise":
        return None
    fields: list[CrossDBForeignKey] = []
    joins, lookups = _split(query.get_meta(), requested, "", fields)
    if not lookups:
        return None
    _validate(lookups)
    hops = _first_hops(query.get_meta(), requested, lookups)
    lookups = [lookup for lookup in lookups if lookup not in {field.name for field in hops}]
    # A reverse manager's queryset sets its instance on every row (ModelIterable).
    known = queryset._known_related_objects  # type: ignore[attr-defined]
    hops = [field for field in hops if field not in known]
    return Plan(joins, tuple(lookups), tuple(fields), tuple(hops))


# The tree of names ------------------------------------------------------------


def _is_cross(field: Any) -> bool:
    from crossdb.fields import CrossDBForeignKey

    return isinstance(field, CrossDBForeignKey)


def _hop(opts: Any, name: str) -> tuple[Any, Any, str] | None:
    """
    ``(field, related model, attribute)`` for the relation ``name`` follows, where
    ``field`` is the CrossDBForeignKey it crosses through, or None inside one database.

    None altogether for a name that is no single-valued relation (a FilteredRelation,
    a typo): the compiler reports those as Django does.
    """
    try:
        relation = opts.get_field(name)
    except FieldDoesNotExist:
        return None
    if not relation.is_relation or relation.many_to_many or relation.one_to_many:
        return None
    if relation.related_model is None:
        return None  # a GenericForeignKey: the compiler refuses it, in Django's words
    if relation.concrete or not relation.auto_created:  # forward
        crossing = relation if _is_cross(relation) else None
        return crossing, relation.related_model, relation.name
    # A reverse one-to-one: the select_related name is its related_query_name().
    crossing = relation.field if _is_cross(relation.field) else None
    return crossing, relation.related_model, relation.get_accessor_name()


def _split(
    opts: Any, requested: Tree, prefix: str, fields: list[CrossDBForeignKey]
) -> tuple[Tree, list[Lookup]]:
    """``requested`` as joins inside ``opts``'s database and lookups across databases."""
    joins: Tree = {}
    lookups: list[Lookup] = []
    for name, subtree in requested.items():
        hop = _hop(opts, name)
        if hop is None:
            joins[name] = subtree
            continue
        crossing, model, attribute = hop
        if crossing is None:
            joins[name], deeper = _split(
                model._meta, subtree, f"{prefix}{attribute}{LOOKUP_SEP}", fields
            )
            lookups.extend(deeper)
            continue
        fields.append(crossing)
        path = f"{prefix}{attribute}"
        beyond, deeper = _split(model._meta, subtree, "", fields)
        if beyond:
            queryset = model._base_manager.select_related(*_paths(beyond))
            lookups.append(Prefetch(path, queryset=queryset))
        else:
            lookups.append(path)
        lookups.extend(_prefixed(lookup, path) for lookup in deeper)
    return joins, lookups


def _validate(lookups: list[Lookup]) -> None:
    """
    Raise Django's ``FieldError`` for a name beyond a cross-database hop
    (``select_related("user__no_such_field")``) before any row is read, as the
    compiler does for one database: each second step's ``select_related`` is
    compiled (not run) now.
    """
    for lookup in lookups:
        if isinstance(lookup, Prefetch) and lookup.queryset is not None:
            queryset = lookup.queryset
            queryset.query.get_compiler(using=queryset.db).as_sql()


def _paths(tree: Tree, prefix: str = "") -> Iterator[str]:
    for name, subtree in tree.items():
        if subtree:
            yield from _paths(subtree, f"{prefix}{name}{LOOKUP_SEP}")
        else:
            yield f"{prefix}{name}"


def _prefixed(lookup: Lookup, path: str) -> Lookup:
    if isinstance(lookup, str):
        return f"{path}{LOOKUP_SEP}{lookup}"
    return Prefetch(f"{path}{LOOKUP_SEP}{lookup.prefetch_through}", queryset=lookup.queryset)


def default_joins(query: Any) -> Tree | None:
    """
    What ``select_related()`` without arguments joins, minus the cross-database
    fields, as names; None when no cross-database field is on its way.
    """
    cached = _cached_default_tree(query.model, query.max_depth)
    if cached is None:
        return None
    mask = query.get_select_mask()
    if mask:
        # Deferred relations: left out, where names would raise "cannot be both
        # deferred and traversed" (Django joins them without arguments).
        return _default_tree(query.get_meta(), 1, query.max_depth, mask)[0]
    # Query.add_select_related() fills the tree in place: hand out a copy.
    return _copy(cached)


@cache
def _cached_default_tree(model: type[Model], max_depth: int) -> Tree | None:
    tree, crossed = _default_tree(model._meta, 1, max_depth, {})
    return tree if crossed else None


def _default_tree(opts: Any, depth: int, max_depth: int, mask: Any) -> tuple[Tree, bool]:
    # As SQLCompiler.get_related_selections() with restricted=False, and
    # select_related_descend(): non-null forward relations, no parent links.
    tree: Tree = {}
    crossed = False
    if depth > max_depth:
        return tree, crossed
    for field in opts.fields:
        remote = field.remote_field
        if remote is None or field.null or getattr(remote, "parent_link", False):
            continue
        if mask and field not in mask:
            continue
        if _is_cross(field):
            crossed = True
            continue
        deeper = mask.get(field) or {} if mask else {}
        tree[field.name], beyond = _default_tree(remote.model._meta, depth + 1, max_depth, deeper)
        crossed = crossed or beyond
    return tree, crossed


def _copy(tree: Tree) -> Tree:
    return {name: _copy(subtree) for name, subtree in tree.items()}


# The first hop ------------------------------------------------------------------------


def _first_hops(opts: Any, requested: Tree, lookups: list[Lookup]) -> list[CrossDBForeignKey]:
    """The forward cross-database fields of ``opts`` that ``lookups`` name alone."""
    hops = []
    for name in requested:
        hop = _hop(opts, name)
        field = hop and hop[0]
        if field and opts.get_field(name) is field and name in lookups and _direct(field):
            hops.append(field)
    return hops


_DEFERRED = object()


def _direct(field: CrossDBForeignKey) -> bool:
    """Whether one database holds every target of ``field``, whatever the instance."""
    return field.database is not None or not routers.hints_matter()


def load_hop(instances: list[Model], field: CrossDBForeignKey) -> None:
    """
    ``field``'s targets for ``instances``: the queries of its descriptor's
    ``get_prefetch_querysets()`` (``batching.fetch_by_keys()`` on the one target
    database), matched by key in one dict while the sources are walked in the order
    they were built, without the per-row tuples and lists of ``prefetch_one_level()``
    (variants S and A of benchmarks/bench_select_related.py).
    A key with no row is cached as missing, so reading it raises ``DanglingReference``.
    """
    attname, cache_name = field.attname, field.cache_name
    key_name = field.target_field.attname
    keys: list[Any] = []
    for instance in instances:
        # The column as loaded (a deferred one through its descriptor): a plain dict
        # read per row, where getattr() would call DeferredAttribute.__get__.
        key = instance.__dict__.get(attname, _DEFERRED)
        if key is _DEFERRED:
            key = getattr(instance, attname)
        keys.append(key)
    wanted = set(keys)
    wanted.discard(None)
    by_key: dict[Any, Model] = {}
    if wanted:
        queryset = field.related_model._base_manager.db_manager(
            routers.target_db_for_read(field)
        ).all()
        queryset.query.clear_ordering(force=False)
        integer = is_integer(field.target_field)
        rows = fetch_by_keys(
            queryset, key_name, list(wanted), integer=integer, matched_by_caller=True
        )
        # Matched exactly, in Python: a collation may have brought other spellings.
        by_key = {row.__dict__[key_name]: row for row in rows}
    # The sources in their own order (the order they were built in memory): a dict
    # lookup and one cache write each, no revisit of the targets.
    get = by_key.get
    for instance, key in zip(instances, keys, strict=True):
        instance._state.fields_cache[cache_name] = get(key)
    if not field.remote_field.multiple:
        reverse = field.remote_field
        for instance, key in zip(instances, keys, strict=True):
            if (target := get(key)) is not None:
                reverse.set_cached_value(target, instance)


# Evaluation -----------------------------------------------------------------------


def fetch_all(queryset: QuerySet[Any]) -> list[Model] | None:
    """The rows of ``queryset``, each relation loaded; None when SQL alone can load them."""
    how = plan(queryset)
    if how is None:
        return None
    iterable: Any = queryset._iterable_class
    rows: list[Model] = list(iterable(how.stripped(queryset)))
    how.load(rows)
    return rows


def iterate(
    queryset: QuerySet[Any], how: Plan, use_chunked_fetch: bool, chunk_size: int | None
) -> Iterator[Model]:
    """
    ``QuerySet._iterator()``, chunk by chunk: each chunk's relations are loaded
    before its rows are handed out. Without ``chunk_size`` Django would
    prefetch nothing; chunks of ``CHUNK_SIZE`` rows keep the second step batched.
    """
    size = chunk_size or CHUNK_SIZE
    iterable: Any = queryset._iterable_class
    rows = iterable(how.stripped(queryset), chunked_fetch=use_chunked_fetch, chunk_size=size)
    # Django prefetches per chunk only when chunk_size is given (iterator() refuses
    # prefetch_related() without it).
    prefetches: Any = queryset._prefetch_related_lookups if chunk_size is not None else ()  # type: ignore[attr-defined]
    chunks = read_ahead if reads_ahead(queryset.db, how) else in_turn
    for chunk in chunks(rows, size, queryset.db):
        how.load(chunk)
        if prefetches:
            prefetch_related_objects(chunk, *prefetches)
        yield from chunk


def in_turn(rows: Iterable[Model], size: int, alias: str) -> Iterator[list[Model]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def reads_ahead(source: str, how: Plan) -> bool:
    """
    Whether ``.iterator()`` reads the next chunk of rows in a worker thread
    while this chunk's relations are loaded: between database servers, when
    no transaction is open on any alias involved (the worker reads on a
    connection of its own, which would not see an open transaction's rows).
    Not with SQLite: it runs in this process and holds the interpreter lock
    while it works, so the two threads would mostly wait for each other.
    """
    aliases = how.databases(source)
    if aliases is None:
        return False
    for alias in aliases:
        connection = connections[alias]
        if connection.vendor == "sqlite" or connection.in_atomic_block:
            return False
        if connection.connection is not None and not connection.get_autocommit():
            return False
    return True


def read_ahead(rows: Iterable[Model], size: int, alias: str) -> Iterator[list[Model]]:
    """``in_turn()``, with the next chunk read by a worker while the caller works on this one."""
    iterator = iter(rows)  # not started: the query runs, and stays, in the worker's thread

    def next_chunk() -> list[Model]:
        return list(islice(iterator, size))

    def finish() -> None:
        try:
            close: Callable[[], None] | None = getattr(iterator, "close", None)
            if close is not None:
                close()
        finally:
            connections[alias].close()  # the worker thread's own connection

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="crossdb-select-related") as worker:
        pending: Future[list[Model]] | None = worker.submit(next_chunk)
        try:
            while pending is not None:
                chunk = pending.result()
                if not chunk:
                    break
                pending = worker.submit(next_chunk) if len(chunk) == size else None
                yield chunk
        finally:
            # Runs after a read in flight: one worker, one queue.
            worker.submit(finish).result()
