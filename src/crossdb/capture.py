"""
Capturing deletions at the database, for links with ``capture_deletes=True``.

The triggers (``crossdb.capture_sql``) are installed by migration operations
(``crossdb.operations``) when the target's database is migrated, or, for source
apps without migrations, after ``migrate`` (``install_after_migrate``). The
installed links are listed in a table of their own, ``crossdb_capture_links``,
which ``flush`` does not empty: SQLite drops a table's triggers when Django
rebuilds the table to alter it, and ``install_after_migrate`` puts back those
listed there but missing.

``suspended(using=...)`` is the circuit breaker: inside it, deletions on that
database are not captured (``flush`` runs inside it).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from crossdb import routers
from crossdb.capture_sql import (
    CONTROL_TABLE,
    QUEUE_TABLE,
    REGISTRY_TABLE,
    VENDORS,
    TriggerSpec,
    install_sql,
    installed_triggers,
    is_links_trigger,
    remove_sql,
)

if TYPE_CHECKING:
    from crossdb.fields import CrossDBForeignKey

__all__ = ["captured_links", "install", "remove", "suspended"]


class CaptureInstallError(RuntimeError):
    pass


def link_label(field: CrossDBForeignKey) -> str:
    return f"{field.model._meta.label}.{field.name}"


def captured_links(database: str | None = None) -> list[CrossDBForeignKey]:
    """Fields with ``capture_deletes=True``; with ``database``, those whose target is there."""
    from django.apps import apps

    from crossdb.fields import CrossDBForeignKey

    links = [
        field
        for model in apps.get_models()
        for field in model._meta.local_fields
        if isinstance(field, CrossDBForeignKey) and field.capture_deletes
    ]
    if database is not None:
        links = [field for field in links if target_database(field) == database]
    return sorted(links, key=link_label)


def target_database(field: CrossDBForeignKey) -> str:
    return routers.target_db_for_read(field)


def field_for(link: str) -> CrossDBForeignKey:
    """The field of a label ``app_label.Model.field``."""
    from django.apps import apps

    model_label, _, name = link.rpartition(".")
    field: CrossDBForeignKey = apps.get_model(model_label)._meta.get_field(name)
    return field


# The breaker -----------------------------------------------------------------------------


@contextmanager
def suspended(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """
    Deletions on database ``using`` inside the block are not captured (ORM
    deletions still propagate their ``on_delete`` as they always do).

    On PostgreSQL and SQLite the block runs in a transaction (``atomic``): the
    switch is the transaction-local setting ``crossdb.capture`` (PostgreSQL) or
    a row of the control table that no other connection sees (SQLite). On
    MySQL/MariaDB it is the session variable ``@crossdb_capture``.
    """
    connection = connections[using]
    if connection.vendor == "mysql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT @crossdb_capture")
            (before,) = cursor.fetchone()
            cursor.execute("SET @crossdb_capture = 'off'")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET @crossdb_capture = %s", [before])
        return
    if connection.vendor not in VENDORS:
        yield
        return
    with transaction.atomic(using=using):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('crossdb.capture', true)")
                (before,) = cursor.fetchone()
                cursor.execute("SELECT set_config('crossdb.capture', 'off', true)")
            yield
            # An error rolls the atomic block back, and the setting with it.
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('crossdb.capture', %s, true)", [before or ""])
            return
        token = uuid.uuid4().hex
        if not _table_exists(connection, CONTROL_TABLE):
            yield  # no trigger was ever installed in this database
            return
        qn = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {qn(CONTROL_TABLE)} (token) VALUES (%s)", [token])
        yield
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {qn(CONTROL_TABLE)} WHERE token = %s", [token])


# Installing ------------------------------------------------------------------------------


def _table_exists(connection: Any, table: str) -> bool:
    with connection.cursor() as cursor:
        return table in connection.introspection.table_names(cursor)


def _execute(connection: Any, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            try:
                cursor.execute(statement)
            except Exception as error:
                raise _explained(connection, error) from error


def _explained(connection: Any, error: Exception) -> Exception:
    text = str(error)
    if connection.vendor == "mysql" and ("1419" in text or "log_bin_trust" in text):
        return CaptureInstallError(
            f"{text}. Binary logging is on in database {connection.alias!r}: creating the "
            f"capture triggers needs the SUPER privilege or "
            f"`SET GLOBAL log_bin_trust_function_creators = 1` (see check crossdb.W041)."
        )
    return error


def _ensure_registry(connection: Any) -> None:
    qn = connection.ops.quote_name
    _execute(
        connection,
        [
            f"CREATE TABLE IF NOT EXISTS {qn(REGISTRY_TABLE)} "
            f"(link varchar(200) NOT NULL PRIMARY KEY)"
        ],
    )


def install(connection: Any, spec: TriggerSpec) -> None:
    """Create ``spec``'s triggers in ``connection``'s database and list the link as installed."""
    if not _table_exists(connection, QUEUE_TABLE):
        raise CaptureInstallError(
            f"{spec.link}: the table {QUEUE_TABLE} does not exist in database "
            f"{connection.alias!r}; run `manage.py migrate crossdb --database "
            f"{connection.alias}` first."
        )
    # The link's triggers for another table or column (a rename) would capture twice, or fail.
    _execute(connection, remove_sql(spec.link, connection))
    _execute(connection, install_sql(spec, connection))
    _ensure_registry(connection)
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {qn(REGISTRY_TABLE)} WHERE link = %s", [spec.link])
        cursor.execute(f"INSERT INTO {qn(REGISTRY_TABLE)} (link) VALUES (%s)", [spec.link])


def remove(connection: Any, link: str) -> None:
    _execute(connection, remove_sql(link, connection))
    if _table_exists(connection, REGISTRY_TABLE):
        qn = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {qn(REGISTRY_TABLE)} WHERE link = %s", [link])


def registered_links(connection: Any) -> set[str]:
    if not _table_exists(connection, REGISTRY_TABLE):
        return set()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT link FROM {connection.ops.quote_name(REGISTRY_TABLE)}")
        return {row[0] for row in cursor.fetchall()}


def expected_spec(field: CrossDBForeignKey) -> TriggerSpec | None:
    """The triggers ``field`` needs as the code stands (None for a key crossdb cannot capture)."""
    try:
        return TriggerSpec.of(field, link_label(field))
    except ValueError:
        return None  # check crossdb.E041 says why


def out_of_date_links(alias: str) -> list[tuple[CrossDBForeignKey, bool]]:
    """
    Captured links whose target is in ``alias``, listed as installed, without the
    trigger they need: ``(field, stale)``, ``stale`` when a trigger of the link is
    there but for another table, key column or key type (a rename since), or for
    a table or column the database does not have (a migration not applied).
    """
    connection = connections[alias]
    registered = registered_links(connection)
    if not registered:
        return []
    present = installed_triggers(connection)
    found = []
    for field in captured_links(alias):
        label, spec = link_label(field), expected_spec(field)
        if label not in registered or spec is None:
            continue
        if spec.name not in present:
            found.append((field, any(is_links_trigger(name, label) for name in present)))
        elif not _has_column(connection, spec.table, spec.column):
            found.append((field, True))
    return found


def missing_links(alias: str) -> list[CrossDBForeignKey]:
    """Captured links whose target is in ``alias``, listed as installed, with a trigger missing."""
    return [field for field, _stale in out_of_date_links(alias)]


def _unmigrated_links(alias: str) -> list[CrossDBForeignKey]:
    """Captured links of source apps without migrations: no operation installs them."""
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True, load=False)
    loader.load_disk()
    return [
        field
        for field in captured_links(alias)
        if field.model._meta.app_label in loader.unmigrated_apps
    ]


def install_after_migrate(using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """
    ``post_migrate`` receiver: put back the triggers SQLite dropped with a rebuilt
    table, replace those of a renamed table or key column, and install those of
    source apps without migrations.
    """
    from crossdb.capture_log_sql import install_missing_logs

    install_missing_logs(using)
    connection = connections[using]
    if connection.vendor not in VENDORS or not _table_exists(connection, QUEUE_TABLE):
        return
    present = installed_triggers(connection)
    wanted = {link_label(field): field for field in missing_links(using)}
    for field in _unmigrated_links(using):
        spec = expected_spec(field)
        if spec is not None and spec.name not in present:
            wanted[link_label(field)] = field
    for _label, field in sorted(wanted.items()):
        spec = expected_spec(field)
        # Migrated to a state before the table or column the code names: leave the triggers
        # that match the database (check crossdb.W040 reports them) until it gets there.
        if spec is not None and _has_column(connection, spec.table, spec.column):
            install(connection, spec)


def _has_column(connection: Any, table: str, column: str) -> bool:
    if not _table_exists(connection, table):
        return False
    with connection.cursor() as cursor:
        description = connection.introspection.get_table_description(cursor, table)
    return column in {info.name for info in description}


def clear_truncation_markers(
    link: str,
    using: str = DEFAULT_DB_ALIAS,
    before: datetime | None = None,
    ids: Collection[int] | None = None,
) -> int:
    """
    Forget that ``link``'s target table was truncated, once verify_links reconciled
    it: the markers of ``ids`` (verify_links passes those it saw before its scan),
    or those written before ``before`` (the database's clock), or all of them.
    """
    from crossdb.models import CapturedDeletion

    markers = CapturedDeletion.objects.using(using).filter(kind="truncate", link=link)
    if ids is not None:
        markers = markers.filter(pk__in=list(ids))
    if before is not None:
        markers = markers.filter(created_at__lt=before)
    count: int = markers.delete()[0]
    return count
