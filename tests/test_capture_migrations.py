"""
Capture triggers through real migrations, as a user runs them: a throwaway project in
``tmp_path`` (``manage.py`` in a subprocess) whose ``members.Member.account`` captures the
deletions of ``accounts.Account``, routed to the database ``target``. That database is a
SQLite file on the sqlite topology, a fresh PostgreSQL and a fresh MariaDB database on the
real one (named with ``CROSSDB_TEST_DB_SUFFIX``, dropped afterwards).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

REPO = Path(__file__).resolve().parent.parent
VENDORS = ["postgresql", "mysql"] if settings.TOPOLOGY == "real" else ["sqlite"]
LINK = "members.Member.account"

SETTINGS = """
import json, os
from pathlib import Path

try:
    import MySQLdb  # noqa: F401
except ImportError:
    import pymysql

    pymysql.install_as_MySQLdb()

BASE = Path(__file__).resolve().parent
SECRET_KEY = "capture-migrations-test"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = ["crossdb", "members", "accounts"]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(BASE / "default.sqlite3")},
    "target": json.loads(os.environ["CAPTEST_TARGET"]),
}
DATABASE_ROUTERS = ["crossdb.routers.CrossDBRouter"]
CROSSDB_ROUTES = {"accounts": "target"}
# A test's way to change any setting: a JSON object of names and values.
globals().update(json.loads(os.environ.get("CAPTEST_SETTINGS", "{}")))
"""

ACCOUNT = """
from django.db import models


class Account(models.Model):
    id = models.AutoField(primary_key=True{column})
    name = models.CharField(max_length=50)
{meta}
"""

MEMBER = """
from django.db import models

from crossdb import CrossDBForeignKey


class Member(models.Model):
    account = CrossDBForeignKey(
        "accounts.Account",
        models.CASCADE,
        capture_deletes={capture},
        related_name="members"{column},
    )
"""

# Run in the project (``manage.py shell -c``): the state of the target's database, as JSON.
PROBE = """
import json
from django.db import connections
from crossdb.capture_sql import installed_triggers
from crossdb.models import CapturedDeletion
from accounts.models import Account

connection = connections["target"]
print(json.dumps({
    "triggers": sorted(installed_triggers(connection)),
    "queued": sorted(
        [row.link, row.kind, row.target_key]
        for row in CapturedDeletion.objects.using("target")
    ),
}))
"""

# A raw DELETE of a new account (bypassing the ORM), then the captured queue applied.
DELETE = """
import json
from django.db import connections
from crossdb.models import CapturedDeletion
from crossdb.propagation import propagate_pending
from accounts.models import Account
from members.models import Member

account = Account.objects.create(name="gone")
Member.objects.create(account=account)
connection = connections["target"]
qn = connection.ops.quote_name
meta = Account._meta
with connection.cursor() as cursor:
    cursor.execute(
        f"DELETE FROM {qn(meta.db_table)} WHERE {qn(meta.pk.column)} = %s", [account.pk]
    )
queued = [[r.link, r.kind, r.target_key] for r in CapturedDeletion.objects.using("target")]
result = propagate_pending()
print(json.dumps({
    "key": str(account.pk),
    "queued": queued,
    "applied": result.applied,
    "errors": result.errors,
    "members_left": Member.objects.filter(account_id=account.pk).count(),
}))
"""


def target_database(vendor: str, name: str, tmp_path: Path) -> dict[str, Any]:
    if vendor == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "target.sqlite3")}
    server = settings.DATABASES["default" if vendor == "postgresql" else "employee"]
    return {
        "ENGINE": server["ENGINE"],
        "HOST": server["HOST"],
        "PORT": server["PORT"],
        "USER": server["USER"],
        "PASSWORD": "",
        "NAME": name,
        **({"OPTIONS": {"charset": "utf8mb4"}} if vendor == "mysql" else {}),
    }


def server_database(vendor: str, name: str, create: bool) -> None:
    """Create (or drop) the database ``name`` on the real topology's server for ``vendor``."""
    if vendor == "postgresql":
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(
                f'CREATE DATABASE "{name}"' if create else f'DROP DATABASE "{name}" WITH (FORCE)'
            )
    elif vendor == "mysql":
        import MySQLdb

        server = MySQLdb.connect(host="127.0.0.1", user="root", password="")
        try:
            server.cursor().execute(
                f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"
                if create
                else f"DROP DATABASE `{name}`"
            )
        finally:
            server.close()


class Project:
    def __init__(self, root: Path, target: dict[str, Any]) -> None:
        self.root = root
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CROSSDB_"))},
            "DJANGO_SETTINGS_MODULE": "project_settings",
            "CAPTEST_TARGET": json.dumps(target),
            "PYTHONPATH": os.pathsep.join([str(root), str(REPO / "src")]),
        }
        (root / "project_settings.py").write_text(SETTINGS)
        (root / "manage.py").write_text(
            "import sys\nfrom django.core.management import execute_from_command_line\n"
            "execute_from_command_line(sys.argv)\n"
        )
        for app in ("members", "accounts"):
            (root / app / "migrations").mkdir(parents=True)
            (root / app / "__init__.py").write_text("")
            (root / app / "migrations" / "__init__.py").write_text("")
        self.account()
        self.member(capture=True)

    def account(self, column: str | None = None, table: str | None = None) -> None:
        (self.root / "accounts" / "models.py").write_text(
            ACCOUNT.format(
                column=f", db_column={column!r}" if column else "",
                meta=f"\n    class Meta:\n        db_table = {table!r}\n" if table else "",
            )
        )

    def member(self, capture: bool, column: str | None = None) -> None:
        column = f", db_column={column!r}" if column else ""
        (self.root / "members" / "models.py").write_text(
            MEMBER.format(capture=capture, column=column)
        )

    def manage(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=self.root,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        return done

    def ok(self, *args: str, **env: str) -> str:
        done = self.manage(*args, **env)
        assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.stdout

    def migrate(self, *args: str) -> None:
        for alias in ("target", "default"):
            self.ok("migrate", *args, "--database", alias, "--noinput", "-v", "0")

    def shell(self, script: str) -> dict[str, Any]:
        out = self.ok("shell", "-c", script)
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return result

    def triggers(self) -> list[str]:
        return list(self.shell(PROBE)["triggers"])

    def migration(self, app: str, number: str) -> str:
        [path] = (self.root / app / "migrations").glob(f"{number}_*.py")
        return path.read_text()

    def assert_captured(self) -> None:
        """A raw DELETE on the target is captured with its key, and the CASCADE applied."""
        deleted = self.shell(DELETE)
        key = deleted["key"]
        # PostgreSQL's trigger writes one batch row per statement, the others a row per key.
        postgresql = json.loads(self.env["CAPTEST_TARGET"])["ENGINE"].endswith("postgresql")
        row = [LINK, "batch", json.dumps([key])] if postgresql else [LINK, "delete", key]
        assert deleted["queued"] == [row], deleted
        assert (deleted["applied"], deleted["errors"]) == (1, []), deleted
        assert deleted["members_left"] == 0


# The log triggers on the source's table (members, in "default"), and what a raw INSERT logs.
LOGGED = """
import json
from django.db import connections
from crossdb.capture_log_sql import LogSpec, installed_log_triggers
from crossdb.capture import field_for
from crossdb.models import WrittenReference
from accounts.models import Account
from members.models import Member

account = Account.objects.create(name="kept")
connection = connections["default"]
qn = connection.ops.quote_name
meta, field = Member._meta, Member._meta.get_field("account")
with connection.cursor() as cursor:
    table, column = qn(meta.db_table), qn(field.column)
    cursor.execute(f"INSERT INTO {table} ({column}) VALUES (%s)", [account.pk])
    pk = cursor.lastrowid
print(json.dumps({
    "triggers": sorted(installed_log_triggers(connection)),
    "expected": LogSpec.of(field_for("members.Member.account")).name,
    "logged": str(pk) in set(WrittenReference.objects.values_list("source_pk", flat=True)),
}))
"""


@pytest.fixture(params=VENDORS)
def project(request, tmp_path):
    vendor = request.param
    name = f"crossdb_capmig_{uuid.uuid4().hex[:6]}{settings.SUFFIX}"
    server_database(vendor, name, create=True)
    try:
        yield Project(tmp_path, target_database(vendor, name, tmp_path))
    finally:
        server_database(vendor, name, create=False)


def expected_names(project: Project) -> list[str]:
    """The trigger names the code expects (with PostgreSQL's TRUNCATE trigger)."""
    script = (
        "import json\nfrom crossdb.capture import expected_spec, field_for\n"
        f"print(json.dumps({{'name': expected_spec(field_for({LINK!r})).name}}))"
    )
    name = project.shell(script)["name"]
    vendor = json.loads(project.env["CAPTEST_TARGET"])["ENGINE"].rpartition(".")[2]
    return [name, f"{name}_t"] if vendor == "postgresql" else [name]


OTHER_SETTINGS = [
    "{}",
    json.dumps({"CROSSDB_ROUTES": {}}),  # the target in default, the source's database
    json.dumps({"CROSSDB_ROUTES": {"accounts": "target", "members": "target"}}),
    json.dumps({"CROSSDB_PENDING_WARN_AGE": 1, "CROSSDB_PROPAGATION_LEASE": 5}),
]


def test_makemigrations_writes_and_migrate_runs_the_operations(project):
    project.ok("makemigrations", "accounts", "members")
    members = project.migration("members", "0001")
    assert "crossdb.operations.InstallCaptureTriggers(" in members
    assert "link='members.Member.account'" in members or 'link="members.Member.account"' in members
    assert "CaptureTriggers" not in project.migration("accounts", "0001")
    # Nothing more to write, whatever the routes or the capture settings say.
    for changed in OTHER_SETTINGS:
        out = project.ok("makemigrations", "--check", "--dry-run", CAPTEST_SETTINGS=changed)
        assert "No changes detected" in out, (changed, out)

    project.migrate()
    assert project.triggers() == expected_names(project)
    project.assert_captured()

    project.member(capture=False)
    project.ok("makemigrations", "members")
    assert "crossdb.operations.RemoveCaptureTriggers(" in project.migration("members", "0002")
    project.migrate()
    assert project.triggers() == []
    assert project.shell(DELETE)["queued"] == []  # no trigger, nothing captured

    project.member(capture=True)
    project.ok("makemigrations", "members")
    assert "crossdb.operations.InstallCaptureTriggers(" in project.migration("members", "0003")
    assert "No changes detected" in project.ok("makemigrations", "--check", "--dry-run")
    project.migrate()
    assert project.triggers() == expected_names(project)

    project.migrate("members", "zero")
    assert project.triggers() == []


def test_renamed_key_column_and_table_get_new_triggers(project):
    project.ok("makemigrations", "accounts", "members")
    project.migrate()
    first = project.triggers()
    assert first == expected_names(project)

    project.account(column="account_no")
    project.ok("makemigrations", "accounts")
    assert "CaptureTriggers" not in project.migration("accounts", "0002")
    project.migrate()
    renamed = project.triggers()
    assert renamed == expected_names(project)
    assert not set(renamed) & set(first)
    project.assert_captured()
    assert "crossdb.W040" not in project.manage("check", "--database", "target").stderr

    # Back to before the rename: the triggers of the code's column stay, and are stale.
    project.ok("migrate", "accounts", "0001", "--database", "target", "-v", "0")
    assert project.triggers() == renamed
    check = project.manage("check", "--database", "target")
    assert "crossdb.W040" in check.stderr, check.stdout + check.stderr
    assert "is for another table or key column than accounts_account.account_no" in check.stderr
    project.migrate()
    assert project.triggers() == renamed

    project.account(column="account_no", table="ledger")
    project.ok("makemigrations", "accounts")
    project.migrate()
    moved = project.triggers()
    assert moved == expected_names(project)
    assert not set(moved) & set(renamed)
    project.assert_captured()
    check = project.manage("check", "--database", "target")
    assert "crossdb.W040" not in check.stderr, check.stderr

    project.member(capture=False)
    project.ok("makemigrations", "members")
    project.migrate()
    assert project.triggers() == []


def test_renamed_source_column_gets_new_log_triggers(project):
    """The written references' log triggers follow a rename of the source's key column."""
    project.ok("makemigrations", "accounts", "members")
    project.migrate()
    first = project.shell(LOGGED)
    assert first["triggers"] == [first["expected"], f"{first['expected']}_u"], first
    assert first["logged"]

    project.member(capture=True, column="acct")
    project.ok("makemigrations", "members")
    assert "CaptureTriggers" not in project.migration("members", "0002")
    project.migrate()
    renamed = project.shell(LOGGED)
    assert renamed["triggers"] == [renamed["expected"], f"{renamed['expected']}_u"], renamed
    assert not set(renamed["triggers"]) & set(first["triggers"])
    assert renamed["logged"]
    check = project.manage("check", "--database", "default")
    assert "crossdb.W044" not in check.stderr, check.stderr
