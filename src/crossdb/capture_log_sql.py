"""
The triggers that log written references, for ``verify_links --incremental``.

A link with ``capture_deletes=True`` also gets triggers on its *source's* table
that write one ``crossdb_writtenreference`` row (the link and the source row's
primary key) for each row inserted with a key, or whose key is updated to
another value, in the writing transaction, whoever writes it (the ORM,
``QuerySet.update()``, raw SQL, another program). The row's ``logged_at`` is
the database's own UTC clock when the writing statement began (``LOG_CLOCK``),
never the application's: a run forgets a row only once the same clock is
``CROSSDB_INCREMENTAL_RECHECK_DELAY`` past it. No timestamp decides *which*
rows are read: clocks, ``update()`` and the order of commits would lose rows.

- PostgreSQL: a statement-level ``AFTER INSERT`` trigger reading the transition
  table ``new_rows`` (one ``INSERT ... SELECT`` per statement), and a row-level
  ``AFTER UPDATE OF <column>`` trigger whose ``WHEN`` clause lets through only a
  changed key (PostgreSQL refuses transition tables with a column list, and a
  transition table on every ``UPDATE`` would cost all updates, not just those of
  the key).
- MySQL/MariaDB: row-level ``AFTER INSERT`` and ``AFTER UPDATE`` triggers; the
  update compares the old and new key as binary strings (``'x1'`` and ``'X1'``
  are equal under a ``_ci`` collation, different targets elsewhere).
- SQLite: row-level ``AFTER INSERT`` and ``AFTER UPDATE OF <column>`` triggers.

They are installed by the migration operations of ``crossdb.operations`` when
the source's database is migrated and, after every ``migrate``, for each
captured link whose source table lacks them (apps without migrations, tables
SQLite rebuilt, projects that enabled capture before this log existed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import connections

from crossdb import routers
from crossdb.capture_sql import VENDORS, name_digest, trigger_names

if TYPE_CHECKING:
    from crossdb.fields import CrossDBForeignKey

LOG_TABLE = "crossdb_writtenreference"

# The UTC time when the current statement began, in the form Django stores and
# reads a DateTimeField on each backend. The triggers write it, and a run
# compares it with the same clock (``incremental.LogReader``), so neither the
# application's clock nor a session's time zone enters.
LOG_CLOCK = {
    "postgresql": "STATEMENT_TIMESTAMP()",
    "mysql": "UTC_TIMESTAMP(6)",
    "sqlite": "STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')",
}


def log_link_prefix(link: str) -> str:
    """What the names of every log trigger of ``link`` start with (then ``_``)."""
    return "crossdb_log_" + name_digest(link)[:8]


def log_trigger_name(link: str, table: str, pk_column: str, column: str) -> str:
    # Named for the columns the SQL names too: after a rename of the source's table
    # or columns, the expected name is missing and migrate replaces the triggers
    # (a PostgreSQL or MariaDB trigger naming a gone column fails every INSERT).
    return f"{log_link_prefix(link)}_{name_digest(table, pk_column, column)[:6]}"


def source_database(field: CrossDBForeignKey) -> str:
    """Where ``field``'s rows are written, so where their log triggers belong."""
    return routers.source_db_for_write(field)


@dataclass(frozen=True)
class LogSpec:
    """What one link's log triggers need: its label, the source's table, primary key and key."""

    link: str
    table: str
    pk_column: str
    column: str

    @property
    def name(self) -> str:
        return log_trigger_name(self.link, self.table, self.pk_column, self.column)

    @classmethod
    def of(cls, field: Any, link: str | None = None) -> LogSpec:
        """``field`` may be a model's field or a migration state's."""
        opts = field.model._meta
        return cls(
            link or f"{opts.label}.{field.name}",
            str(opts.db_table),
            str(opts.pk.column),
            str(field.column),
        )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def log_install_sql(spec: LogSpec, connection: Any) -> list[str]:
    """The statements creating ``spec``'s log triggers on ``connection``."""
    qn = connection.ops.quote_name
    table, pk, column = qn(spec.table), qn(spec.pk_column), qn(spec.column)
    name, link = spec.name, _literal(spec.link)
    insert = f"INSERT INTO {LOG_TABLE} (link, source_pk, logged_at)"
    clock = LOG_CLOCK.get(connection.vendor)
    if connection.vendor == "postgresql":
        return [
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n  {insert}\n  SELECT {link}, n.{pk}::text, {clock} FROM new_rows n "
            f"WHERE n.{column} IS NOT NULL;\n  RETURN NULL;\nEND\n$$",
            f"CREATE OR REPLACE FUNCTION {name}_u() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n  {insert} VALUES ({link}, NEW.{pk}::text, {clock});\n"
            f"  RETURN NULL;\nEND\n$$",
            f"DROP TRIGGER IF EXISTS {name} ON {table}",
            f"CREATE TRIGGER {name} AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()",
            f"DROP TRIGGER IF EXISTS {name}_u ON {table}",
            f"CREATE TRIGGER {name}_u AFTER UPDATE OF {column} ON {table} FOR EACH ROW "
            f"WHEN (NEW.{column} IS NOT NULL AND OLD.{column} IS DISTINCT FROM NEW.{column}) "
            f"EXECUTE FUNCTION {name}_u()",
        ]
    if connection.vendor == "mysql":
        values = f"{insert} SELECT {link}, CAST(NEW.{pk} AS CHAR), {clock} FROM DUAL"
        changed = f"NOT (CAST(OLD.{column} AS BINARY) <=> CAST(NEW.{column} AS BINARY))"
        return [
            f"DROP TRIGGER IF EXISTS {name}",
            f"CREATE TRIGGER {name} AFTER INSERT ON {table} FOR EACH ROW "
            f"{values} WHERE NEW.{column} IS NOT NULL",
            f"DROP TRIGGER IF EXISTS {name}_u",
            f"CREATE TRIGGER {name}_u AFTER UPDATE ON {table} FOR EACH ROW "
            f"{values} WHERE NEW.{column} IS NOT NULL AND {changed}",
        ]
    if connection.vendor == "sqlite":
        body = f"BEGIN {insert} VALUES ({link}, CAST(NEW.{pk} AS TEXT), {clock}); END"
        return [
            f"DROP TRIGGER IF EXISTS {name}",
            f"CREATE TRIGGER {name} AFTER INSERT ON {table} FOR EACH ROW "
            f"WHEN NEW.{column} IS NOT NULL {body}",
            f"DROP TRIGGER IF EXISTS {name}_u",
            f"CREATE TRIGGER {name}_u AFTER UPDATE OF {column} ON {table} FOR EACH ROW "
            f"WHEN NEW.{column} IS NOT NULL AND OLD.{column} IS NOT NEW.{column} COLLATE BINARY "
            f"{body}",
        ]
    return []  # check crossdb.E042 refuses capture_deletes=True there


def log_remove_sql(link: str, connection: Any, names: Iterable[str] | None = None) -> list[str]:
    """
    The statements removing ``link``'s log triggers: those found in ``connection``'s
    database with its prefix (on PostgreSQL their functions), or ``names`` when given.
    """
    if names is None:
        names = installed_log_triggers(connection, functions=True)
    prefix = log_link_prefix(link) + "_"
    found = sorted({name.removesuffix("_u") for name in names if name.startswith(prefix)})
    if connection.vendor == "postgresql":
        # Dropping the functions drops the triggers that call them.
        return [f"DROP FUNCTION IF EXISTS {fn}() CASCADE" for n in found for fn in (n, f"{n}_u")]
    if connection.vendor in VENDORS:
        return [f"DROP TRIGGER IF EXISTS {fn}" for n in found for fn in (n, f"{n}_u")]
    return []


def installed_log_triggers(connection: Any, functions: bool = False) -> set[str]:
    """
    The names of the log triggers present in ``connection``'s database (with
    ``functions``, also PostgreSQL's trigger functions, even without a trigger).
    """
    return trigger_names(connection, "crossdb_log_", functions=functions)


# Installing ------------------------------------------------------------------------------


def _tables(connection: Any) -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.table_names(cursor))


def install_log(connection: Any, spec: LogSpec) -> bool:
    """
    Create ``spec``'s log triggers; False, doing nothing, while the log table or
    the source table is not migrated there yet (``install_after_migrate`` then
    installs them at the end of that ``migrate``).
    """
    from crossdb.capture import _execute

    if not {LOG_TABLE, spec.table} <= _tables(connection):
        return False
    with connection.cursor() as cursor:
        description = connection.introspection.get_table_description(cursor, spec.table)
    if not {spec.pk_column, spec.column} <= {info.name for info in description}:
        # Migrated to a state before the columns the code names: until it gets there.
        return False
    # Those of another table or column (a rename) go first: a link logs once.
    _execute(
        connection, [*log_remove_sql(spec.link, connection), *log_install_sql(spec, connection)]
    )
    return True


def remove_log(connection: Any, link: str) -> None:
    from crossdb.capture import _execute

    _execute(connection, log_remove_sql(link, connection))


def logged_links(alias: str) -> list[CrossDBForeignKey]:
    """Links with ``capture_deletes=True`` whose rows are written in ``alias``."""
    from crossdb.capture import captured_links

    return [field for field in captured_links() if source_database(field) == alias]


def missing_log_links(alias: str) -> list[CrossDBForeignKey]:
    """Links written in ``alias`` whose log trigger is not there."""
    links = logged_links(alias)
    if not links:
        return []
    present = installed_log_triggers(connections[alias])
    return [field for field in links if LogSpec.of(field).name not in present]


def install_missing_logs(using: str) -> None:
    """The part of ``capture.install_after_migrate`` that puts the log triggers in place."""
    connection = connections[using]
    if connection.vendor not in VENDORS:
        return
    for field in missing_log_links(using):
        install_log(connection, LogSpec.of(field))
