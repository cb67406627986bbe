"""
The example project, run as a user would: manage.py in a subprocess, on fresh databases.

On the real topology its ``default`` is PostgreSQL and its ``employee`` MariaDB,
so migrations are checked on every backend.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    variables = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "CROSSDB_EXAMPLE_SQLITE_DIR": str(tmp_path),
    }
    if settings.TOPOLOGY != "real":
        yield variables
        return
    name = f"crossdb_example_test_{uuid.uuid4().hex[:8]}"
    postgres, mariadb = settings.DATABASES["default"], settings.DATABASES["employee"]
    import MySQLdb
    import psycopg

    with psycopg.connect(
        host=postgres["HOST"], user=postgres["USER"], dbname="postgres", autocommit=True
    ) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    server = MySQLdb.connect(host=mariadb["HOST"], user=mariadb["USER"], password="")
    server.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    variables.update(
        CROSSDB_EXAMPLE_DEFAULT="postgres",
        CROSSDB_EXAMPLE_PG_NAME=name,
        CROSSDB_EXAMPLE_EMPLOYEE="mariadb",
        CROSSDB_EXAMPLE_MARIADB_NAME=name,
    )
    yield variables
    server.cursor().execute(f"DROP DATABASE `{name}`")
    server.close()
    with psycopg.connect(
        host=postgres["HOST"], user=postgres["USER"], dbname="postgres", autocommit=True
    ) as connection:
        connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_each_database_migrates_on_its_own_from_scratch(env):
    # The database-tagged check runs before each migrate; it must not need the tables.
    for alias in ("employee", "asset", "default"):
        result = manage(env, "migrate", "--database", alias, "--noinput")
        assert result.returncode == 0, result.stdout + result.stderr
    assert manage(env, "check", "--database", "employee").returncode == 0


def test_check_is_clean(env):
    # No warning either, e.g. crossdb.W020 for a Django relation the routers split.
    result = manage(env, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_migrations_are_up_to_date(env):
    result = manage(env, "makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


@pytest.mark.parametrize(("app", "alias"), [("employee_app", "employee"), ("asset_app", "asset")])
def test_sqlmigrate_has_an_index_and_no_references(env, app, alias):
    result = manage(env, "sqlmigrate", app, "0001", "--database", alias)
    assert result.returncode == 0, result.stderr
    sql = result.stdout.upper()
    assert "REFERENCES" not in sql
    assert "CREATE INDEX" in sql or "KEY " in sql


def test_demo_runs_and_reports_queries_per_database(env):
    result = manage(env, "demo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(1 query: 1 on default)" in result.stdout
    assert "CrossDatabaseJoinError" in result.stdout
