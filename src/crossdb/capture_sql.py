"""
The triggers that capture deletions, as SQL for each backend.

A link with ``capture_deletes=True`` gets triggers on its *target's* table that
write one ``crossdb_captureddeletion`` row per deleted key, in the deleting
transaction, unless capture is suspended (``crossdb.capture.suspended``):

- PostgreSQL: one statement-level ``AFTER DELETE`` trigger reading the
  transition table ``old_rows`` (it sees rows the database's own cascades
  remove too) and writing ONE ``batch`` row per statement, its keys a JSON
  array of texts: a row per key costs more than the delete itself
  (``benchmarks/bench_capture.py``, Q against P). ``capture_queue.expand_batches``
  turns it into one ``delete`` row per key, in one statement, before anything
  claims them. An ``AFTER TRUNCATE`` trigger writes a ``truncate`` marker.
  Switched off by the transaction-local setting ``crossdb.capture = 'off'``.
- MySQL/MariaDB: a row-level ``AFTER DELETE`` trigger (statement-level triggers
  do not exist there). Switched off by the session variable ``@crossdb_capture``.
- SQLite: a row-level ``AFTER DELETE`` trigger, switched off while the control
  table ``crossdb_capture_off`` holds a row (written inside a transaction only).

A trigger's name ties it to its link, its table and its key column (and the
format of the rows it writes, ``ROW_FORMAT``):
``crossdb_cap_<link hash>_<table, column, kind and format hash>``. After a migration
renames the target's table or key column the expected name is absent, and
``migrate`` replaces the link's triggers (every name with its link's prefix)
with new ones (``crossdb.capture.install_after_migrate``). Names of earlier
installs (``crossdb_cap_<link hash>``, the link only) are removed too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, models

if TYPE_CHECKING:
    from crossdb.fields import CrossDBForeignKey

QUEUE_TABLE = "crossdb_captureddeletion"
CONTROL_TABLE = "crossdb_capture_off"
REGISTRY_TABLE = "crossdb_capture_links"
VENDORS = ("postgresql", "mysql", "sqlite")
# Part of every trigger's name: a release that changes what its triggers write changes
# it, so an upgraded project's `migrate` replaces the triggers of the release before
# (2: PostgreSQL's one batch row per statement; 3: at most BATCH_KEYS keys a row).
ROW_FORMAT = "3"
# PostgreSQL: the most keys one batch row holds (a JSON text of a million UUIDs is ~40 MB).
BATCH_KEYS = 1_000_000
# What every trigger (and capture_queue.expand_batches) writes into the queue.
QUEUE_COLUMNS = "link, target_key, kind, created_at, claim_token, attempts, last_error"


def key_kind(field: Any) -> str | None:
    """ "int", "char" or "uuid" for a target key the triggers can store; None otherwise."""
    if isinstance(field, models.UUIDField):
        return "uuid"
    if isinstance(field, (models.IntegerField, models.AutoField)):
        return "int"
    if isinstance(field, (models.CharField, models.TextField)):
        return "char"
    return None


def name_digest(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


def link_prefix(link: str) -> str:
    """What the names of every trigger of ``link`` start with (then ``_``)."""
    return "crossdb_cap_" + name_digest(link)[:8]


def legacy_trigger_name(link: str) -> str:
    """The name older versions gave ``link``'s trigger: the link only, so a rename kept it."""
    return "crossdb_cap_" + name_digest(link)[:12]


def trigger_name(link: str, table: str, column: str, kind: str) -> str:
    # 27 characters, 29 with PostgreSQL's "_t": under every backend's limit of 63-64.
    return f"{link_prefix(link)}_{name_digest(table, column, kind, ROW_FORMAT)[:6]}"


def is_links_trigger(name: str, link: str) -> bool:
    """Whether the trigger (or PostgreSQL function) ``name`` is one of ``link``'s."""
    legacy = legacy_trigger_name(link)
    return name in (legacy, f"{legacy}_t") or name.startswith(link_prefix(link) + "_")


@dataclass(frozen=True)
class TriggerSpec:
    """What one link's triggers need: its label, the target's table and key column."""

    link: str
    table: str
    column: str
    kind: str

    @property
    def name(self) -> str:
        return trigger_name(self.link, self.table, self.column, self.kind)

    @classmethod
    def of(cls, field: CrossDBForeignKey, link: str | None = None) -> TriggerSpec:
        target_field = field.target_field
        kind = key_kind(target_field)
        if kind is None:
            raise ValueError(
                f"{link or field}: {type(target_field).__name__} keys are not captured."
            )
        return cls(
            link or f"{field.model._meta.label}.{field.name}",
            str(target_field.model._meta.db_table),
            str(target_field.column),
            kind,
        )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def install_sql(spec: TriggerSpec, connection: Any) -> list[str]:
    """The statements creating ``spec``'s triggers (and what they read) on ``connection``."""
    qn = connection.ops.quote_name
    table, column, name, link = qn(spec.table), qn(spec.column), spec.name, _literal(spec.link)
    vendor = connection.vendor
    if vendor == "postgresql":
        insert = f"INSERT INTO {QUEUE_TABLE} ({QUEUE_COLUMNS})"
        row = f"{link}, json_agg(k)::text, 'batch', now(), '', 0, ''"
        deleted = f"FROM old_rows o WHERE o.{column} IS NOT NULL"
        keys = f"SELECT o.{column}::text AS k {deleted}"
        # One value holds at most 1 GB: past BATCH_KEYS keys, a row per BATCH_KEYS of them
        # (numbering the rows costs, so only then).
        part = f"(row_number() OVER () - 1) / {BATCH_KEYS} AS part"
        parts = f"SELECT o.{column}::text AS k, {part} {deleted}"
        capture = (
            f"  IF (SELECT count(*) FROM old_rows) <= {BATCH_KEYS} THEN\n"
            f"    {insert} SELECT {row} FROM ({keys}) AS keys HAVING count(*) > 0;\n"
            f"  ELSE\n"
            f"    {insert} SELECT {row} FROM ({parts}) AS keys GROUP BY part;\n"
            f"  END IF;\n"
        )
        truncate = f"  {insert} VALUES ({link}, '', 'truncate', now(), '', 0, '');\n"
        return [
            *(
                f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                f"BEGIN\n"
                f"IF coalesce(current_setting('crossdb.capture', true), '') <> 'off' THEN\n"
                f"{body}END IF;\nRETURN NULL;\nEND\n$$"
                for fn, body in ((name, capture), (f"{name}_t", truncate))
            ),
            f"DROP TRIGGER IF EXISTS {name} ON {table}",
            f"CREATE TRIGGER {name} AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()",
            f"DROP TRIGGER IF EXISTS {name}_t ON {table}",
            f"CREATE TRIGGER {name}_t AFTER TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}_t()",
        ]
    if vendor == "mysql":
        now = "UTC_TIMESTAMP(6)" if settings.USE_TZ else "NOW(6)"
        key = f"OLD.{column}" if spec.kind == "char" else f"CAST(OLD.{column} AS CHAR)"
        return [
            f"DROP TRIGGER IF EXISTS {name}",
            f"CREATE TRIGGER {name} AFTER DELETE ON {table} FOR EACH ROW "
            f"INSERT INTO {QUEUE_TABLE} ({QUEUE_COLUMNS}) "
            f"SELECT {link}, {key}, 'delete', {now}, '', 0, '' FROM DUAL "
            f"WHERE OLD.{column} IS NOT NULL AND COALESCE(@crossdb_capture, 'on') <> 'off'",
        ]
    if vendor == "sqlite":
        now = "'now'" if settings.USE_TZ else "'now', 'localtime'"
        return [
            f"CREATE TABLE IF NOT EXISTS {CONTROL_TABLE} (token text NOT NULL)",
            f"DROP TRIGGER IF EXISTS {name}",
            f"CREATE TRIGGER {name} AFTER DELETE ON {table} FOR EACH ROW "
            f"WHEN OLD.{column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {CONTROL_TABLE}) "
            f"BEGIN INSERT INTO {QUEUE_TABLE} ({QUEUE_COLUMNS}) VALUES ({link}, "
            f"CAST(OLD.{column} AS TEXT), 'delete', strftime('%Y-%m-%d %H:%M:%f', {now}), "
            f"'', 0, ''); END",
        ]
    # Check crossdb.E042 refuses capture_deletes=True for such a backend before any migration.
    raise ImproperlyConfigured(
        f"crossdb cannot capture deletions on {connection.vendor} (database "
        f"{connection.alias!r}): triggers exist for PostgreSQL, MySQL/MariaDB and SQLite only."
    )


def remove_sql(link: str, connection: Any, names: Iterable[str] | None = None) -> list[str]:
    """
    The statements removing ``link``'s triggers: those found in ``connection``'s
    database with its prefix (on PostgreSQL their functions, even without a
    trigger left), or ``names`` when given, and always its old-style name.
    """
    if names is None:
        names = trigger_names(connection, "crossdb_cap_", functions=True)
    legacy = legacy_trigger_name(link)
    found = sorted({legacy, *(name for name in names if is_links_trigger(name, link))})
    if connection.vendor == "postgresql":
        # Dropping the functions drops the triggers that call them, wherever they are.
        functions = {name.removesuffix("_t") for name in found}
        return [
            f"DROP FUNCTION IF EXISTS {fn}() CASCADE"
            for name in sorted(functions)
            for fn in (name, f"{name}_t")
        ]
    return [f"DROP TRIGGER IF EXISTS {name}" for name in found]


def installed_triggers(connection: Any) -> set[str]:
    """The names of the capture triggers present in ``connection``'s database."""
    return trigger_names(connection, "crossdb_cap_")


def trigger_names(connection: Any, prefix: str, functions: bool = False) -> set[str]:
    """
    The names of the triggers starting with ``prefix`` in ``connection``'s database
    (with ``functions``, also PostgreSQL's functions so named, even without a trigger).
    """
    pattern = prefix.replace("_", "\\_") + "%%"
    queries = {
        "postgresql": f"SELECT tgname FROM pg_trigger WHERE tgname LIKE '{pattern}'",
        "mysql": "SELECT trigger_name FROM information_schema.triggers "
        f"WHERE trigger_schema = DATABASE() AND trigger_name LIKE '{pattern}'",
        "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger' "
        f"AND name LIKE '{pattern}' ESCAPE '\\'",
    }
    if connection.vendor not in queries:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(queries[connection.vendor])
        names = {row[0] for row in cursor.fetchall()}
        if functions and connection.vendor == "postgresql":
            cursor.execute(f"SELECT proname FROM pg_proc WHERE proname LIKE '{pattern}'")
            names |= {row[0] for row in cursor.fetchall()}
    return names


# Field checks ------------------------------------------------------------------------------


def capture_field_checks(field: CrossDBForeignKey) -> list[checks.CheckMessage]:
    """``crossdb.E040``-``E042``: a ``capture_deletes=True`` the triggers cannot serve."""
    from crossdb import routers
    from crossdb.deletion import PROPAGATED_POLICIES, policy_name

    if not field.capture_deletes or isinstance(field.remote_field.model, str):
        return []
    policy = policy_name(field.on_delete)
    if policy not in PROPAGATED_POLICIES:
        return [
            checks.Error(
                f"capture_deletes=True with on_delete={policy or field.on_delete!r}: only "
                f"CASCADE, SET_NULL, SET_DEFAULT and SET() are applied after a deletion.",
                hint="Remove capture_deletes=True, or use one of those policies.",
                obj=field,
                id="crossdb.E040",
            )
        ]
    target_field = field.target_field
    if key_kind(target_field) is None:
        return [
            checks.Error(
                f"capture_deletes=True: the target key "
                f"{target_field.model._meta.label}.{target_field.name} is a "
                f"{type(target_field).__name__}; deletions are captured for integer, "
                f"character and UUID keys only.",
                hint="Remove capture_deletes=True (run `manage.py verify_links` on a schedule "
                "instead), or point to_field at an integer, character or UUID key.",
                obj=field,
                id="crossdb.E041",
            )
        ]
    try:
        alias = routers.target_db_for_read(field)
    except Exception:
        return []  # crossdb.E006 says why
    vendor = connections[alias].vendor
    if vendor not in VENDORS:
        return [
            checks.Error(
                f"capture_deletes=True: the target's database {alias!r} is {vendor}, where "
                f"crossdb has no capture triggers (PostgreSQL, MySQL/MariaDB, SQLite).",
                hint="Remove capture_deletes=True and run `manage.py verify_links` on a "
                "schedule to find deletions made outside the ORM.",
                obj=field,
                id="crossdb.E042",
            )
        ]
    return []
