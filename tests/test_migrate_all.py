"""manage.py migrate_all: on the test databases, and on the example project's fresh ones."""

from __future__ import annotations

import re

import pytest
from django.db import connections
from django.db.migrations.recorder import MigrationRecorder

from tests import test_example_project
from tests.helpers import run_command
from tests.test_example_project import manage

# The example project's fresh databases, as a fixture of this module too.
example_env = test_example_project.env
# DATABASES order, as migrate_all takes them.
ORDER = ["default", "employee", "asset"]


def headings(stdout: str) -> list[str]:
    return re.findall(r"^Database '(\w+)':$", stdout, re.MULTILINE)


def summaries(stdout: str) -> dict[str, str]:
    """``{alias: what its summary line says}``."""
    pattern = r"^(\w+): ((?:No migrations|\d+ migration\(s\)) .*)$"
    return dict(re.findall(pattern, stdout, re.MULTILINE))


@pytest.mark.django_db(databases="__all__")
class TestOnTheTestDatabases:
    def test_every_database_default_first(self):
        result = run_command("migrate_all", interactive=False)

        assert result.exit_code == 0, result.stderr
        assert headings(result.stdout) == ORDER
        assert summaries(result.stdout) == dict.fromkeys(ORDER, "No migrations to apply.")
        assert result.stdout.endswith(
            "3 database(s), 0 migration(s) applied: default, employee, asset.\n"
        )

    def test_database_limits_and_keeps_the_order(self):
        result = run_command("migrate_all", databases=["employee", "default"])

        assert result.exit_code == 0, result.stderr
        assert headings(result.stdout) == ["default", "employee"]

    def test_unknown_database(self):
        result = run_command("migrate_all", databases=["asset", "users", "nope"])

        assert result.exit_code == 2
        assert result.stderr == (
            "Unknown database(s) 'nope', 'users'. DATABASES has: 'default', 'employee', 'asset'."
        )
        assert result.stdout == ""

    def test_verbosity_0_prints_nothing(self):
        assert run_command("migrate_all", verbosity=0).stdout == ""


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_counts_the_migrations_each_database_gets():
    # sessions lives in default only: on employee its migration is recorded but does nothing,
    # so forgetting that record gives employee one (harmless) migration to apply.
    recorder = MigrationRecorder(connections["employee"])
    recorder.record_unapplied("sessions", "0001_initial")
    try:
        planned = run_command("migrate_all", plan=True)
        still_pending = ("sessions", "0001_initial") not in recorder.applied_migrations()
        applied = run_command("migrate_all", interactive=False)
    finally:
        recorder.record_applied("sessions", "0001_initial")

    assert summaries(planned.stdout)["employee"] == "1 migration(s) to apply."
    assert "sessions.0001_initial" in planned.stdout
    assert still_pending
    assert summaries(applied.stdout) == {
        "default": "No migrations to apply.",
        "asset": "No migrations to apply.",
        "employee": "1 migration(s) applied.",
    }
    assert "1 migration(s) applied: default, employee, asset." in applied.stdout


class TestOnTheExampleProject:
    """A subprocess on fresh databases (SQLite files; PostgreSQL and MariaDB on the real one)."""

    def test_plan_then_migrate_then_nothing_left(self, example_env):
        plan = manage(example_env, "migrate_all", "--plan")
        assert plan.returncode == 0, plan.stdout + plan.stderr
        assert headings(plan.stdout) == ORDER
        counts = {alias: int(line.split()[0]) for alias, line in summaries(plan.stdout).items()}
        assert list(counts) == ORDER
        assert all(count > 0 for count in counts.values()), counts
        # --plan applied nothing: the same plan again.
        assert manage(example_env, "migrate_all", "--plan").stdout == plan.stdout

        migrated = manage(example_env, "migrate_all", "--noinput")
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        assert summaries(migrated.stdout) == {
            alias: f"{count} migration(s) applied." for alias, count in counts.items()
        }
        assert manage(example_env, "check", "--database", "employee").returncode == 0

        again = manage(example_env, "migrate_all", "--noinput")
        assert summaries(again.stdout) == dict.fromkeys(ORDER, "No migrations to apply.")

    def test_unknown_database_exits_2(self, example_env):
        result = manage(example_env, "migrate_all", "--database", "nope")
        assert result.returncode == 2
        assert "Unknown database(s) 'nope'" in result.stderr

    def test_a_failure_stops_before_the_next_database(self, example_env, tmp_path):
        not_a_directory = tmp_path / "file"
        not_a_directory.write_text("")
        example_env["CROSSDB_EXAMPLE_SQLITE_DIR"] = str(not_a_directory)
        example_env["CROSSDB_EXAMPLE_MARIADB_PORT"] = "1"  # employee on MariaDB: a closed port

        result = manage(
            example_env, "migrate_all", "--noinput", "--database", "asset", "--database", "employee"
        )

        assert result.returncode == 1
        assert headings(result.stdout) == ["employee"]
        assert "CommandError: Migrating database 'employee' failed: " in result.stderr
        assert result.stderr.endswith("Databases left unmigrated after it: asset.\n")
