"""
Accessors for relations whose two ends live in different databases.

They follow Django's ``related_descriptors`` member for member, so Django's
own machinery (``prefetch_related``, ``Prefetch``, 6.1's fetch modes, the
reverse manager API) keeps working; what changes is *where* each query goes.

Django resolves the database of a related query with
``router.db_for_read(Model, instance=obj)``, and when no router answers it
falls back to ``obj._state.db``: the database the *other* end came from.
Inside one database that is a sensible default; across databases it is the
classic "no such table" bug. Every query below is sent to a database chosen
by ``crossdb.routers``, which asks the routers with the same hints but falls
back to DEFAULT_DB_ALIAS instead (or uses the field's explicit ``database=``).

Django also asks ``router.allow_relation()`` on assignment, and without a
router opinion only allows relations inside one database. A cross-database
field exists precisely to relate rows of two databases, so its accessors
never ask; they check the model instead. An unsaved target is accepted on
assignment, as Django does, and ``save()`` refuses to store the reference
until the target is saved and has a key.

In the example::

    class Employee(Model):  # lives in the "employee" database
        user = CrossDBForeignKey(User, CASCADE, related_name="employees")

- ``Employee.user`` is a ``CrossDBForwardDescriptor``: one query on the
  user's database on first access, cached afterwards. A key with no row
  behind it raises ``Employee.user.DanglingReference``.
- ``User.employees`` is a ``CrossDBReverseManyToOneDescriptor``: a related
  manager whose queries and writes go to the employee's database.
- For ``CrossDBOneToOneField`` the forward side is a
  ``CrossDBForwardOneToOneDescriptor`` and the reverse side a
  ``CrossDBReverseOneToOneDescriptor`` returning one object.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Model, QuerySet
from django.db.models.fields.related_descriptors import (
    ForwardManyToOneDescriptor,
    ReverseManyToOneDescriptor,
    ReverseOneToOneDescriptor,
    create_reverse_many_to_one_manager,
)
from django.utils.functional import cached_property

from crossdb import routers
from crossdb.batching import fetch_by_keys, is_integer
from crossdb.conf import crossdb_settings
from crossdb.exceptions import DanglingReference as DanglingReferenceBase
from crossdb.exceptions import LazyLoadForbidden, LazyLoadWarning

if TYPE_CHECKING:
    from crossdb.fields import CrossDBForeignKey

    _ForwardBase = ForwardManyToOneDescriptor[Any]
    _ReverseManyBase = ReverseManyToOneDescriptor[Any]
    _ReverseOneBase = ReverseOneToOneDescriptor[Any, Any]
else:
    _ForwardBase = ForwardManyToOneDescriptor
    _ReverseManyBase = ReverseManyToOneDescriptor
    _ReverseOneBase = ReverseOneToOneDescriptor

_forbid_lazy_loads: ContextVar[bool] = ContextVar("crossdb_forbid_lazy_loads", default=False)


@contextmanager
def forbid_lazy_loads() -> Iterator[None]:
    """
    Make any lazy load through a cross-database field raise ``LazyLoadForbidden``.

    Meant for tests: wrap the code under test and every N+1 across databases
    shows up as an error naming the field and the lookup to prefetch. It wins
    over ``CROSSDB_LAZY_LOADS``, which applies the same project-wide.
    """
    token = _forbid_lazy_loads.set(True)
    try:
        yield
    finally:
        _forbid_lazy_loads.reset(token)


def _refuse_lazy_load(model: type[Model], accessor: str, stacklevel: int = 3) -> None:
    """Apply ``forbid_lazy_loads()``, else ``CROSSDB_LAZY_LOADS``, to a lazy load about to run."""
    forbidden = _forbid_lazy_loads.get()
    mode = "raise" if forbidden else crossdb_settings.LAZY_LOADS
    if mode == "allow":
        return
    where = "inside forbid_lazy_loads()" if forbidden else f"(CROSSDB_LAZY_LOADS={mode!r})"
    message = (
        f"Lazy load of {model._meta.label}.{accessor} across databases {where}. Load it up "
        f"front with .prefetch_related({accessor!r}) or prefetch_cross_db(..., {accessor!r})."
    )
    if mode == "raise":
        raise LazyLoadForbidden(message)
    # stacklevel: the line that read the descriptor (or called the manager's .all()).
    warnings.warn(message, LazyLoadWarning, stacklevel=stacklevel)


def _base_queryset(model: Any, db: str | None, instance: Model | None) -> QuerySet[Any]:
    """``model``'s base manager on ``db``, in ``instance``'s fetch mode (Django 6.1+)."""
    queryset = model._base_manager.db_manager(
        db, hints={} if instance is None else {"instance": instance}
    ).all()
    fetch_mode = getattr(getattr(instance, "_state", None), "fetch_mode", None)
    return queryset if fetch_mode is None else queryset.fetch_mode(fetch_mode)  # type: ignore[no-any-return]


def _fetch(descriptor: Any, instance: Model) -> None:
    """Load through Django's fetch mode when it has one (6.1+), else one row."""
    fetch_mode = getattr(instance._state, "fetch_mode", None)
    if fetch_mode is None:
        descriptor.fetch_one(instance)
    else:
        fetch_mode.fetch(descriptor, instance)


def _single_queryset(querysets: list[QuerySet[Any]] | None) -> QuerySet[Any] | None:
    if not querysets:
        return None
    if len(querysets) != 1:
        raise ValueError(
            "querysets argument of get_prefetch_querysets() should have a length of 1."
        )
    return querysets[0]


def _prefetch_by_database(
    instances: list[Model],
    db_of: Any,
    key_of: Any,
    base: Any,
    key_field: str,
    integer: bool = False,
) -> tuple[QuerySet[Any], list[Model], dict[int, str]]:
    """
    Load the rows ``instances`` point at: one query per database per chunk.

    Keys are grouped by the database each instance's rows live in and
    de-duplicated there; the same key in two databases is two rows.
    """
    keys_by_db: dict[str, dict[Any, None]] = {}
    db_by_instance: dict[int, str] = {}
    for instance in instances:
        key = key_of(instance)
        if key is None:
            continue
        db = db_of(instance)
        db_by_instance[id(instance)] = db
        keys_by_db.setdefault(db, {})[key] = None
    result = base._chain()
    rows: list[Model] = []
    if keys_by_db:
        query = base._chain()
        query._prefetch_related_lookups = ()
        query.query.clear_ordering(force=False)
        for db, keys in keys_by_db.items():
            rows.extend(fetch_by_keys(query.using(db), key_field, list(keys), integer=integer))
    # A QuerySet, as get_prefetch_querysets() promises, holding the rows of however
    # many queries (databases, chunks) as its results: Django's prefetch_one_level()
    # fills querysets' caches the same way. Its nested lookups then run once over all
    # rows, not once per chunk.
    result._result_cache = rows
    return result, rows, db_by_instance


def _cached_on_ancestor(field: CrossDBForeignKey, instance: Model) -> Model | None:
    """
    The target as cached on a parent of ``instance`` (multi-table inheritance),
    e.g. by a prefetch on the parent's queryset: Django looks there before it
    queries. Adapted from Django 6.1's ``_traverse_ancestors()`` and its use in
    ``ForwardManyToOneDescriptor.__get__`` (django/db/models/fields/
    related_descriptors.py); tests/test_django_copies.py notices when it changes.
    """
    current: Model | None = instance
    while current is not None:
        link = current._meta.get_ancestor_link(field.model)
        if not link:
            return None
        current = link.get_cached_value(current, None)
        if current is not None:
            cached: Model | None = field.get_cached_value(current, default=None)
            if cached is not None:
                return cached
    return None


class CrossDBForwardDescriptor(_ForwardBase):
    """``Employee.user``: the target, read from the target's database."""

    field: CrossDBForeignKey

    @cached_property
    def DanglingReference(self) -> type[DanglingReferenceBase]:
        # Built lazily, like RelatedObjectDoesNotExist: the target model may
        # still be a string when the descriptor is created.
        return type(
            "DanglingReference",
            (self.RelatedObjectDoesNotExist, DanglingReferenceBase),
            {
                "__module__": self.field.model.__module__,
                "__qualname__": (
                    f"{self.field.model.__qualname__}.{self.field.name}.DanglingReference"
                ),
            },
        )

    def dangling(self, instance: Model, value: Any, database: str) -> DanglingReferenceBase:
        field = self.field
        target = field.related_model._meta
        exc: DanglingReferenceBase = self.DanglingReference(
            f"{field.model._meta.label}.{field.name} refers to {target.label} with "
            f"{field.target_field.name}={value!r}, which does not exist in database "
            f"{database!r}.",
            model=field.model,
            field=field,
            value=value,
            database=database,
        )
        return exc

    def get_queryset(self, *, instance: Model | None = None, **hints: Any) -> QuerySet[Any]:
        # Django 5.2 calls get_queryset(**hints); 6.0+ get_queryset(instance=...).
        instance = instance or hints.get("instance")
        db = routers.target_db_for_read(self.field, instance)
        return _base_queryset(self.field.related_model, db, instance)

    def get_object(self, instance: Model) -> Model:
        value = getattr(instance, self.field.attname)
        queryset = self.get_queryset(instance=instance)
        try:
            return queryset.get(**{self.field.target_field.attname: value})  # type: ignore[no-any-return]
        except self.field.related_model.DoesNotExist:
            raise self.dangling(instance, value, queryset.db) from None

    def fetch_one(self, instance: Model) -> None:
        try:
            rel_obj = self.get_object(instance)
        except DanglingReferenceBase:
            # Remember the miss so that the next access raises without a query.
            self.field.set_cached_value(instance, None)
            raise
        self.field.set_cached_value(instance, rel_obj)
        if not self.field.remote_field.multiple:
            self.field.remote_field.set_cached_value(rel_obj, instance)

    def get_prefetch_querysets(
        self, instances: list[Model], querysets: list[QuerySet[Any]] | None = None
    ) -> tuple[Any, ...]:
        field = self.field
        base: Any = _single_queryset(querysets)
        fixed_db = base._db if base is not None else None
        if base is None:
            # Django 6.1+: the rows come in the fetch mode of the instances asking.
            base = _base_queryset(field.related_model, None, instances[0] if instances else None)
        attname = field.attname
        key_attname = field.target_field.attname

        if fixed_db is None and field.database is None and not routers.hints_matter():
            fixed_db = routers.target_db_for_read(field)

        def db_of(instance: Model) -> str:
            return fixed_db or routers.target_db_for_read(field, instance)

        integer = is_integer(field.target_field)
        queryset, rows, db_by_instance = _prefetch_by_database(
            instances, db_of, lambda i: getattr(i, attname), base, key_attname, integer
        )
        if not field.remote_field.multiple:
            by_key = {(db_by_instance.get(id(i)), getattr(i, attname)): i for i in instances}
            for row in rows:
                # Exact keys: a row a collation matched to another spelling belongs to none.
                instance = by_key.get((row._state.db, getattr(row, key_attname)))
                if instance is not None:
                    field.remote_field.set_cached_value(row, instance)
        return (
            queryset,
            lambda row: (row._state.db, getattr(row, key_attname)),
            lambda instance: (db_by_instance.get(id(instance)), getattr(instance, attname)),
            True,
            field.cache_name,
            False,
        )

    # Adapted from Django 5.2's django/db/models/fields/related_descriptors.py
    # (ForwardManyToOneDescriptor.__get__); tests/test_django_copies.py notices when it changes.
    def __get__(self, instance: Model | None, cls: Any = None) -> Any:
        if instance is None:
            return self
        field = self.field
        try:
            rel_obj = field.get_cached_value(instance)
        except KeyError:
            if getattr(instance, field.attname) is None:
                rel_obj = None
                field.set_cached_value(instance, None)
            elif (rel_obj := _cached_on_ancestor(field, instance)) is not None:
                field.set_cached_value(instance, rel_obj)
            else:
                _refuse_lazy_load(field.model, field.name)
                _fetch(self, instance)
                rel_obj = field.get_cached_value(instance)
        if rel_obj is None:
            value = getattr(instance, field.attname)
            if value is not None:
                # Cached as missing by an earlier access or by a prefetch.
                raise self.dangling(instance, value, routers.target_db_for_read(field, instance))
            if not field.null:
                raise self.RelatedObjectDoesNotExist(f"{field.model.__name__} has no {field.name}.")
        return rel_obj

    # Adapted from Django 5.2's django/db/models/fields/related_descriptors.py
    # (ForwardManyToOneDescriptor.__set__); tests/test_django_copies.py notices when it changes.
    def __set__(self, instance: Model, value: Any) -> None:
        field = self.field
        remote_field = field.remote_field
        if value is not None:
            target = field.related_model
            if not isinstance(value, target._meta.concrete_model):
                raise ValueError(
                    f'Cannot assign "{value!r}": "{instance._meta.object_name}.{field.name}" '
                    f'must be a "{target._meta.object_name}" instance.'
                )
            # As Django: an unsaved target is accepted here and refused by save()
            # until it is saved, when Model._prepare_related_fields_for_save()
            # picks up its key. Unlike Django, neither object is given the
            # other's database: they live in different ones.
            setattr(instance, field.attname, getattr(value, field.target_field.attname))
        else:
            related = field.get_cached_value(instance, default=None)
            if related is not None and not remote_field.multiple:
                remote_field.set_cached_value(related, None)
            setattr(instance, field.attname, None)
        field.set_cached_value(instance, value)
        if value is not None and not remote_field.multiple:
            remote_field.set_cached_value(value, instance)


class CrossDBForwardOneToOneDescriptor(CrossDBForwardDescriptor):
    """``Badge.user`` for a ``CrossDBOneToOneField``; parent links cannot cross databases."""


def create_cross_db_reverse_many_to_one_manager(superclass: type[Any], rel: Any) -> type[Any]:
    """
    Django's reverse manager, with every query and write on the source's database.

    ``rel`` is the ``ManyToOneRel`` of a CrossDBForeignKey; ``superclass`` is
    the source model's default manager class, so custom manager methods stay
    available on ``user.employees``.
    """
    base = create_reverse_many_to_one_manager(superclass, rel)
    field = rel.field

    class CrossDBRelatedManager(base):  # type: ignore[valid-type, misc]
        def __init__(self, instance: Model) -> None:
            super().__init__(instance)
            self._db = routers.source_db_for_read(field, instance)

        def __call__(self, *, manager: str) -> Any:
            manager_class = getattr(self.model, manager).__class__
            return create_cross_db_reverse_many_to_one_manager(manager_class, rel)(self.instance)

        def all(self) -> QuerySet[Any]:
            # .all() on an unprefetched reverse manager in a loop is the N+1;
            # explicit .filter()/.count() calls are queries the caller asked for.
            _refuse_lazy_load_on_manager(self)
            return super().all()  # type: ignore[no-any-return]

        def _write_db(self) -> str:
            return routers.source_db_for_write(field, self.instance)

        def _on_source(self, method: str, kwargs: dict[str, Any]) -> Any:
            # Django's versions ask the router with the target as hint; when
            # no router answers, that is the target's database.
            self._check_fk_val()
            kwargs[field.name] = self.instance
            manager = self.db_manager(self._write_db())
            return getattr(super(base, manager), method)(**kwargs)

        def create(self, **kwargs: Any) -> Any:
            self._remove_prefetched_objects()
            return self._on_source("create", kwargs)

        def get_or_create(self, **kwargs: Any) -> Any:
            return self._on_source("get_or_create", kwargs)

        def update_or_create(self, **kwargs: Any) -> Any:
            return self._on_source("update_or_create", kwargs)

        create.alters_data = get_or_create.alters_data = True  # type: ignore[attr-defined]
        update_or_create.alters_data = True  # type: ignore[attr-defined]

        # Adapted from Django 5.2's django/db/models/fields/related_descriptors.py
        # (create_reverse_many_to_one_manager's add); see tests/test_django_copies.py.
        def add(self, *objs: Model, bulk: bool = True) -> None:
            self._check_fk_val()
            self._remove_prefetched_objects()
            db = self._write_db()
            for obj in objs:
                if not isinstance(obj, self.model):
                    raise TypeError(
                        f"'{self.model._meta.object_name}' instance expected, got {obj!r}"
                    )
            if bulk:
                for obj in objs:
                    if obj._state.adding or obj._state.db != db:
                        # Django's wording; the database is the source's, {db!r}.
                        raise ValueError(
                            f"{obj!r} instance isn't saved. Use bulk=False or save the "
                            f"object first."
                        )
                    setattr(obj, field.name, self.instance)
                self.model._base_manager.using(db).filter(pk__in=[o.pk for o in objs]).update(
                    **{field.attname: getattr(self.instance, field.target_field.attname)}
                )
            else:
                with transaction.atomic(using=db, savepoint=False):
                    for obj in objs:
                        setattr(obj, field.name, self.instance)
                        obj.save(using=db)

        add.alters_data = True  # type: ignore[attr-defined]

        # Adapted from Django 5.2's django/db/models/fields/related_descriptors.py
        # (create_reverse_many_to_one_manager's set); see tests/test_django_copies.py.
        def set(self, objs: Iterable[Model], *, bulk: bool = True, clear: bool = False) -> None:
            self._check_fk_val()
            objs = tuple(objs)
            if not field.null:
                self.add(*objs, bulk=bulk)
                return
            db = self._write_db()
            with transaction.atomic(using=db, savepoint=False):
                if clear:
                    self.clear(bulk=bulk)
                    self.add(*objs, bulk=bulk)
                    return
                old_objs = set(self.using(db).all())
                new_objs = []
                for obj in objs:
                    if obj in old_objs:
                        old_objs.remove(obj)
                    else:
                        new_objs.append(obj)
                self.remove(*old_objs, bulk=bulk)
                self.add(*new_objs, bulk=bulk)

        set.alters_data = True  # type: ignore[attr-defined]

        if field.null:
            # Adapted from Django 5.2's django/db/models/fields/related_descriptors.py
            # (create_reverse_many_to_one_manager's _clear); see tests/test_django_copies.py.
            def _clear(self, queryset: QuerySet[Any], bulk: bool) -> None:
                self._remove_prefetched_objects()
                db = self._write_db()
                queryset = queryset.using(db)
                if bulk:
                    queryset.update(**{field.attname: None})
                    return
                with transaction.atomic(using=db, savepoint=False):
                    for obj in queryset:
                        setattr(obj, field.name, None)
                        obj.save(update_fields=[field.name], using=db)

            _clear.alters_data = True  # type: ignore[attr-defined]

    return CrossDBRelatedManager


def _refuse_lazy_load_on_manager(manager: Any) -> None:
    cache = getattr(manager.instance, "_prefetched_objects_cache", {})
    if manager.field.remote_field.cache_name not in cache:
        _refuse_lazy_load(
            type(manager.instance), manager.field.remote_field.accessor_name, stacklevel=4
        )


class CrossDBReverseManyToOneDescriptor(_ReverseManyBase):
    """``User.employees``: a manager over the source model on the source's database."""

    @cached_property
    def related_manager_cls(self) -> type[Any]:
        related_model = self.rel.related_model
        return create_cross_db_reverse_many_to_one_manager(
            related_model._default_manager.__class__, self.rel
        )


class CrossDBReverseOneToOneDescriptor(_ReverseOneBase):
    """``User.badge`` for a ``CrossDBOneToOneField``: one object from the source's database."""

    def get_queryset(self, *, instance: Model | None = None, **hints: Any) -> QuerySet[Any]:
        instance = instance or hints.get("instance")
        db = routers.source_db_for_read(self.related.field, instance)
        return _base_queryset(self.related.related_model, db, instance)

    # Adapted from Django 5.2's django/db/models/fields/related_descriptors.py
    # (ReverseOneToOneDescriptor.__get__, fetch_one() since 6.1); see test_django_copies.py.
    def fetch_one(self, instance: Model) -> None:
        filter_args = self.related.field.get_forward_related_filter(instance)
        try:
            rel_obj = self.get_queryset(instance=instance).get(**filter_args)
        except self.related.related_model.DoesNotExist:  # type: ignore[attr-defined]
            rel_obj = None
        else:
            self.related.field.set_cached_value(rel_obj, instance)
        self.related.set_cached_value(instance, rel_obj)

    def __get__(self, instance: Model | None, cls: Any = None) -> Any:
        if instance is None:
            return self
        if not self.related.is_cached(instance) and instance.pk is not None:
            _refuse_lazy_load(type(instance), str(self.related.accessor_name))
            _fetch(self, instance)
        return super().__get__(instance, cls)

    def __set__(self, instance: Model, value: Any) -> None:
        if value is None or not isinstance(value, self.related.related_model):
            super().__set__(instance, value)
            return
        field = self.related.field
        setattr(value, field.attname, getattr(instance, field.target_field.attname))
        self.related.set_cached_value(instance, value)
        field.set_cached_value(value, instance)
