"""Reusable pieces of the test suite: query counts per database, introspection, commands."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

# Public since crossdb.testing; kept importable from here for the existing tests.
from crossdb.testing import assert_num_queries_per_db as assert_num_queries_per_db

# Databases where conftest.py creates a stray ``people_autotarget`` table (AutoTarget lives in
# ``default``): rows put there catch a queryset compiled against the wrong database.
SHADOW_ALIASES = ("employee", "asset")


def table_names(alias: str) -> set[str]:
    connection = connections[alias]
    with connection.cursor() as cursor:
        return set(connection.introspection.table_names(cursor))


def columns(alias: str, table: str) -> dict[str, Any]:
    """``{column name: FieldInfo}`` of ``table`` as the database reports it."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        return {
            info.name: info
            for info in connection.introspection.get_table_description(cursor, table)
        }


def constraints(alias: str, table: str) -> dict[str, dict[str, Any]]:
    connection = connections[alias]
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, table)


def introspected_type(alias: str, table: str, column: str) -> str:
    """The Django field class name the database's introspection maps ``column`` to."""
    connection = connections[alias]
    info = columns(alias, table)[column]
    return connection.introspection.get_field_type(info.type_code, info)


@dataclass
class CommandResult:
    stdout: str
    stderr: str
    exit_code: int


def run_command(name: str, *args: Any, **options: Any) -> CommandResult:
    """Run a management command, capturing its output and exit code instead of raising."""
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        call_command(name, *args, stdout=stdout, stderr=stderr, **options)
    except CommandError as error:
        stderr.write(str(error))
        return CommandResult(stdout.getvalue(), stderr.getvalue(), error.returncode)
    except SystemExit as error:
        code = error.code if isinstance(error.code, int) else 1
        return CommandResult(stdout.getvalue(), stderr.getvalue(), code)
    return CommandResult(stdout.getvalue(), stderr.getvalue(), 0)


# verify_links --format json: the fields every report carries besides its results.
ENVELOPE = ("schema_version", "started_at", "finished_at", "duration_s", "versions", "databases")


def without_envelope(document: dict[str, Any]) -> dict[str, Any]:
    """A verify_links JSON document without the fields that differ from run to run."""
    return {key: value for key, value in document.items() if key not in ENVELOPE}


def all_pending() -> list[Any]:
    """Every crossdb.PendingPropagation row, in every database."""
    from crossdb.models import PendingPropagation

    return [row for alias in connections for row in PendingPropagation.objects.using(alias)]


def expire_claims(model: Any = None) -> None:
    """
    What the end of a dead process's lease looks like to the next runner: every claim on
    ``model``'s rows (PendingPropagation by default) has run out, in every database.
    """
    from datetime import timedelta

    from django.utils import timezone

    from crossdb.models import PendingPropagation

    past = timezone.now() - timedelta(seconds=1)
    for alias in connections:
        (model or PendingPropagation).objects.using(alias).update(claimed_until=past)
