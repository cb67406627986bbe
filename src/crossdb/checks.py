"""
Project-wide checks. Per-field checks live on the field (``CrossDBForeignKey.check``).

``check_managers`` warns about models whose default manager cannot load their
cross-database fields with ``select_related()``.

``check_orphans`` and ``check_key_collations`` are tagged ``database``: Django
runs them for ``manage.py check --database ALIAS`` and ``manage.py migrate
--database ALIAS`` (before migrating), never for plain ``check``. Links whose
tables do not exist yet, as before a first migrate, are skipped; links whose
databases cannot be reached are named in one warning per database (W005).
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from django.apps import apps
from django.core import checks
from django.db import connections, models

from crossdb.collations import Collation, column_collation
from crossdb.conf import crossdb_settings
from crossdb.fields import CrossDBForeignKey
from crossdb.verification import Verifier, link_label, select_links
from crossdb.verification.engine import connection_error


@checks.register(checks.Tags.database)
def check_orphans(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    max_rows = crossdb_settings.CHECK_MAX_ROWS
    tables: dict[str, set[str]] = {}
    unreachable: dict[str, list[str]] = {}
    for alias in databases or ():
        for field in select_links(database=alias):
            verifier = Verifier(field, max_rows=max_rows)
            if (down := _unreachable(verifier)) is not None:
                unreachable.setdefault(down, []).append(link_label(field))
                continue
            if not _tables_exist(verifier, tables):
                continue
            result = verifier.run()
            if not result.orphans:
                continue
            extent = (
                f"in the first {result.checked} references checked (the check stops at "
                f"CROSSDB_CHECK_MAX_ROWS={max_rows})"
                if not result.complete
                else f"among {result.checked} references"
            )
            messages.append(
                checks.Warning(
                    f"{result.orphans} reference(s) {extent} point to "
                    f"{field.remote_field.model._meta.label} rows missing from database "
                    f"{result.target_database!r}; e.g. "
                    f"{', '.join(map(repr, result.sample))}.",
                    hint=f"Run `manage.py verify_links {link_label(field)}` for the full "
                    f"report, and add --fix set-null or --fix delete to repair.",
                    obj=field,
                    id="crossdb.W003",
                )
            )
    for alias, labels in unreachable.items():
        messages.append(
            checks.Warning(
                f"Database {alias!r} is unreachable ({connection_error(alias)}): crossdb could "
                f"not check {', '.join(labels)} for missing keys (crossdb.W003) nor their key "
                f"collations (crossdb.W004).",
                hint=f"Check DATABASES[{alias!r}] and that its server is running, then run "
                f"`manage.py check --database {alias}` again.",
                id="crossdb.W005",
            )
        )
    return messages


@checks.register(checks.Tags.database)
def check_key_collations(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    tables: dict[str, set[str]] = {}
    for alias in databases or ():
        for field in select_links(database=alias):
            verifier = Verifier(field)
            # An unreachable database: check_orphans reports it (crossdb.W005).
            if _unreachable(verifier) is None and _tables_exist(verifier, tables):
                warning = key_collation_warning(field, verifier.source_db, verifier.target_db)
                if warning is not None:
                    messages.append(warning)
    return messages


def key_collation_warning(
    field: CrossDBForeignKey, source_db: str, target_db: str
) -> checks.Warning | None:
    """``crossdb.W004`` when the key column and the target's compare text differently."""
    target_field = field.target_field
    if not isinstance(target_field, (models.CharField, models.TextField)):
        return None
    source_table, source_column = field.model._meta.db_table, str(field.column)
    target_table, target_column = target_field.model._meta.db_table, str(target_field.column)
    source = column_collation(source_db, source_table, source_column)
    target = column_collation(target_db, target_table, target_column)
    if source is None or target is None or source.compares_like(target):
        return None
    return checks.Warning(
        f"Key column {source_table}.{source_column} (database {source_db!r}) has collation "
        f"{_described(source)}; its target column {target_table}.{target_column} "
        f"(database {target_db!r}) has collation {_described(target)}.",
        hint=f"Lookups follow the column's collation (filter({field.name}='abc') may also "
        f"match 'ABC' or 'abc '); crossdb's own operations compare keys exactly, and "
        f"`manage.py verify_links {link_label(field)}` reports keys that match their target "
        f"only under a collation. Give both columns an exact collation: utf8mb4_nopad_bin "
        f"(MariaDB), utf8mb4_0900_bin (MySQL), a deterministic one (PostgreSQL), BINARY "
        f"(SQLite).",
        obj=field,
        id="crossdb.W004",
    )


def _described(collation: Collation) -> str:
    if collation.exact:
        return f"{collation.name!r}, which compares keys exactly"
    return (
        f"{collation.name!r}, which may find different keys equal (case, accents, trailing spaces)"
    )


def _unreachable(verifier: Verifier) -> str | None:
    """The first of the link's databases that cannot be reached, if any."""
    return next((a for a in verifier.databases() if connection_error(a) is not None), None)


def _tables_exist(verifier: Verifier, known: dict[str, set[str]]) -> bool:
    """
    Whether the link's tables and columns are migrated: ``migrate`` runs this check
    before the migrations that create or rename them, and a query naming them
    would fail there.
    """
    field = verifier.field
    for alias, model, column in (
        (verifier.source_db, field.model, field.column),
        (verifier.target_db, field.remote_field.model, field.target_field.column),
    ):
        connection = connections[alias]
        if alias not in known:
            known[alias] = set(connection.introspection.table_names())
        table = model._meta.db_table
        if table not in known[alias]:
            return False
        with connection.cursor() as cursor:
            description = connection.introspection.get_table_description(cursor, table)
        if column not in {info.name for info in description}:
            return False
    return True


@checks.register(checks.Tags.models)
def check_managers(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from crossdb.fields import CrossDBForeignKey
    from crossdb.query import CrossDBQuerySetMixin

    models = (
        apps.get_models()
        if app_configs is None
        else chain.from_iterable(config.get_models() for config in app_configs)
    )
    messages: list[checks.CheckMessage] = []
    for model in models:
        fields = [f.name for f in model._meta.fields if isinstance(f, CrossDBForeignKey)]
        manager = model._meta.default_manager
        queryset_class = getattr(manager, "_queryset_class", None)
        if not fields or manager is None or queryset_class is None:
            continue
        if issubclass(queryset_class, CrossDBQuerySetMixin):
            continue
        messages.append(
            checks.Warning(
                f"{model._meta.label} has cross-database fields ({', '.join(fields)}), but its "
                f"default manager '{manager.name}' returns a {queryset_class.__name__}, which "
                f"raises CrossDatabaseJoinError for select_related('{fields[0]}') and cannot "
                f"filter through the relation.",
                hint="Set objects = CrossDBManager() on the model (from crossdb), or mix "
                "crossdb.CrossDBQuerySetMixin into the manager's QuerySet class.",
                obj=model,
                id="crossdb.W010",
            )
        )
    return messages
