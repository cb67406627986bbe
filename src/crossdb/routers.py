"""
Where each side of a cross-database relation lives.

Django's ``ConnectionRouter`` answers "which database?" by asking each router
and, when none answers, falling back to ``hints["instance"]._state.db``. For a
relation that crosses databases that fallback is exactly wrong: it sends the
query for a ``User`` to the database the ``Employee`` came from. The functions
here ask the same routers with the same hints but fall back to
DEFAULT_DB_ALIAS, i.e. to where ``Model.objects.all()`` would read from.

``CrossDBRouter`` is a settings-driven router for projects that would
otherwise hand-write one router per app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, connections, router
from django.db.models import Model

from crossdb.conf import crossdb_settings
from crossdb.exceptions import TargetDatabaseError

if TYPE_CHECKING:
    from crossdb.fields import CrossDBForeignKey


def _ask_routers(action: str, model: type[Model], **hints: Any) -> str | None:
    for r in router.routers:
        method = getattr(r, action, None)
        if method is None:
            continue
        chosen = method(model, **hints)
        if chosen:
            return str(chosen)
    return None


def hints_matter(action: str = "db_for_read") -> bool:
    """
    Whether any router's answer to ``action`` may depend on the instance hint.

    A router declares it does not with ``routes_ignore_hints = True`` (as
    CrossDBRouter does); one without the method does not answer at all. When
    none cares, a batch of instances is routed once instead of once each.
    """
    return any(
        hasattr(r, action) and not getattr(r, "routes_ignore_hints", False) for r in router.routers
    )


def db_for_read(model: type[Model], **hints: Any) -> str:
    """``router.db_for_read`` without the fallback to the instance's database."""
    return _ask_routers("db_for_read", model, **hints) or DEFAULT_DB_ALIAS


def db_for_write(model: type[Model], **hints: Any) -> str:
    """``router.db_for_write`` without the fallback to the instance's database."""
    return _ask_routers("db_for_write", model, **hints) or DEFAULT_DB_ALIAS


def _checked(alias: str, field: CrossDBForeignKey, side: str) -> str:
    if alias not in connections.settings:
        raise TargetDatabaseError(
            f"{field.model._meta.label}.{field.name}: the {side} database {alias!r} is not "
            f"in DATABASES (known aliases: {', '.join(sorted(connections.settings))})."
        )
    return alias


def target_db_for_read(field: CrossDBForeignKey, instance: Model | None = None) -> str:
    """The database to read ``field``'s target from, for ``instance`` if given."""
    if field.database is not None:
        return _checked(field.database, field, "target")
    hints = {} if instance is None else {"instance": instance}
    return _checked(db_for_read(field.related_model, **hints), field, "target")


def source_db_for_read(field: CrossDBForeignKey, target: Model | None = None) -> str:
    """The database holding the rows that point at ``target`` through ``field``."""
    hints = {} if target is None else {"instance": target}
    return _checked(db_for_read(field.model, **hints), field, "source")


def source_db_for_write(field: CrossDBForeignKey, target: Model | None = None) -> str:
    hints = {} if target is None else {"instance": target}
    return _checked(db_for_write(field.model, **hints), field, "source")


def _connection_key(alias: str) -> tuple[str, ...] | None:
    """What tells a database apart in ``alias``'s settings; None when nothing does."""
    conf = connections[alias].settings_dict
    name = str(conf.get("NAME") or "")
    if name in ("", ":memory:"):  # each connection to these is a database of its own
        return None
    return tuple(str(conf.get(key) or "") for key in ("ENGINE", "NAME", "HOST", "PORT"))


def same_database(alias: str, other: str) -> bool:
    """
    Whether two aliases reach one database, so that SQL may join their tables.

    They do when they are the same alias; when one is the other's ``TEST["MIRROR"]``; when
    their ENGINE, NAME, HOST and PORT are identical; or when the routers read some model
    from one and write it to the other (a replica and its primary), asked without hints.
    """
    if alias == other:
        return True
    groups = {name: name for name in connections.settings}

    def find(name: str) -> str:
        while groups.setdefault(name, name) != name:
            name = groups[name]
        return name

    def union(one: str, two: str) -> None:
        groups[find(one)] = find(two)

    keys: dict[tuple[str, ...], str] = {}
    for name in list(groups):
        mirror = connections.settings[name].get("TEST", {}).get("MIRROR")
        if mirror:
            union(name, str(mirror))
        key = _connection_key(name)
        if key is not None:
            union(name, keys.setdefault(key, name))
    if find(alias) == find(other):
        return True
    for model in apps.get_models(include_auto_created=True):
        union(db_for_read(model), db_for_write(model))
        if find(alias) == find(other):
            return True
    return False


class CrossDBRouter:
    """
    Route models by ``settings.CROSSDB_ROUTES``::

        CROSSDB_ROUTES = {"employee_app": "employee", "asset_app.Asset": "asset"}

    Keys are app labels or ``app_label.ModelName`` (the more specific wins; the
    model name in any case). Models not listed live in ``CROSSDB_DEFAULT_DATABASE``
    ("default") and are migrated only there, so no database holds a stray copy of
    another's table. The ``crossdb`` app's own tables are migrated on every database.
    """

    # Answers depend on the model only: prefetch routes a whole batch with one call.
    routes_ignore_hints = True

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str | None], str] = {}
        # A weak receiver: a router dropped with its settings is not kept alive.
        setting_changed.connect(self._setting_changed)

    def _setting_changed(self, *, setting: str, **kwargs: Any) -> None:
        if setting in ("CROSSDB_ROUTES", "CROSSDB_DEFAULT_DATABASE"):
            self._cache.clear()

    def resolve(self, app_label: str, model_name: str | None = None) -> str:
        """The alias of ``app_label.model_name`` (or of the app when model_name is None)."""
        key = (app_label, None if model_name is None else model_name.lower())
        try:
            return self._cache[key]
        except KeyError:
            pass
        routes = crossdb_settings.ROUTES
        alias = routes.get(app_label, crossdb_settings.DEFAULT_DATABASE)
        if key[1] is not None:
            for route, routed_alias in routes.items():
                label, _, name = route.partition(".")
                if name and label == app_label and name.lower() == key[1]:
                    alias = routed_alias
                    break
        self._cache[key] = alias = str(alias)
        return alias

    def _route(self, model: type[Model]) -> str:
        return self.resolve(model._meta.app_label, model._meta.model_name)

    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        return self._route(model)

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        return self._route(model)

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        # Ordinary relations still need both rows in one database; cross-database
        # fields never ask (their descriptor does not call allow_relation).
        if self._route(type(obj1)) == self._route(type(obj2)):
            return True
        return None

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        if app_label == "crossdb":
            return True
        return db == self.resolve(app_label, model_name)
