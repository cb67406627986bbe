"""Reusable pieces of the test suite: query counts per database, introspection, commands."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.test.utils import CaptureQueriesContext

# Databases where conftest.py creates a stray ``people_autotarget`` table (AutoTarget lives in
# ``default``): rows put there catch a queryset compiled against the wrong database.
SHADOW_ALIASES = ("employee", "asset")


@contextmanager
def assert_num_queries_per_db(expected: Mapping[str, int]) -> Iterator[None]:
    """
    Assert how many queries the block runs on each database alias.

    Every alias not named in ``expected`` must see no query at all::

        with assert_num_queries_per_db({"default": 1}):
            employee.user
    """
    unknown = set(expected) - set(connections)
    assert not unknown, f"unknown aliases: {sorted(unknown)}"
    with ExitStack() as stack:
        captured = {
            alias: stack.enter_context(CaptureQueriesContext(connections[alias]))
            for alias in connections
        }
        yield
    got = {alias: len(context.captured_queries) for alias, context in captured.items()}
    wanted = {alias: expected.get(alias, 0) for alias in connections}
    if got != wanted:
        lines = [f"queries per database: expected {wanted}, got {got}"]
        for alias, context in captured.items():
            lines += [f"  [{alias}] {query['sql']}" for query in context.captured_queries]
        raise AssertionError("\n".join(lines))


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
