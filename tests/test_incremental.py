"""
``verify_links --incremental``: references logged by triggers on the source's table
(``crossdb.capture_log_sql``) and checked by ``crossdb.verification.incremental``.

Each captured link writes its rows in another database; on the real topology the
sources are on MariaDB (``account``), PostgreSQL (``badge``, ``token``) and SQLite
(``room``), the targets on PostgreSQL, MariaDB, PostgreSQL and SQLite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.core import checks
from django.db import connections, models
from django.db.migrations.state import ProjectState
from django.db.models.signals import pre_delete
from django.test import override_settings

from crossdb.capture import field_for, install_after_migrate
from crossdb.capture_checks import check_log_triggers
from crossdb.capture_log_sql import LogSpec, installed_log_triggers, remove_log
from crossdb.checks_settings import check_numbers
from crossdb.models import WrittenReference
from crossdb.operations import InstallCaptureTriggers, RemoveCaptureTriggers
from crossdb.testing import CaptureQueriesPerDatabase
from tests.helpers import run_command
from tests.integrity.models import (
    CapAccount,
    CapBadge,
    CapBooking,
    CapHolder,
    CapMember,
    CapRoom,
    CapToken,
    CapUse,
    CapVisit,
)

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)
REPO = Path(__file__).resolve().parent.parent


@dataclass
class Link:
    """One captured link: its target and source models, their databases, a key that is missing."""

    source: type[models.Model]
    name: str
    target: type[models.Model]
    source_alias: str
    target_alias: str

    @property
    def label(self) -> str:
        return f"{self.source._meta.label}.{self.name}"

    @property
    def field(self) -> Any:
        return self.source._meta.get_field(self.name)

    def new_target(self) -> models.Model:
        if self.target is CapBadge:
            return CapBadge.objects.create(code=uuid.uuid4().hex[:10])
        if self.target is CapToken:
            return CapToken.objects.create(id=uuid.uuid4())
        return self.target.objects.create()

    def missing_key(self) -> Any:
        if self.target is CapBadge:
            return "missing"
        if self.target is CapToken:
            return uuid.uuid4()
        return 10**6

    def raw_insert(self, key: Any) -> Any:
        """Insert a source row by SQL, as a program outside Django would; return its pk."""
        connection = connections[self.source_alias]
        qn = connection.ops.quote_name
        value = self.field.target_field.get_db_prep_value(key, connection)
        table, column = qn(self.source._meta.db_table), qn(self.field.column)
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {table} ({column}) VALUES (%s)", [value])
        return self.source._base_manager.using(self.source_alias).order_by("-pk")[0].pk

    def logged(self) -> list[WrittenReference]:
        return list(WrittenReference.objects.using(self.source_alias).filter(link=self.label))


LINKS = {
    "account": Link(CapMember, "account", CapAccount, "employee", "default"),
    "badge": Link(CapHolder, "badge", CapBadge, "default", "employee"),
    "room": Link(CapBooking, "room", CapRoom, "asset", "default"),
    "token": Link(CapUse, "token", CapToken, "default", "asset"),
}
# One link written in each database (MariaDB, PostgreSQL, SQLite on the real topology).
BY_SOURCE = ["account", "badge", "room"]


def incremental(link: Link, *args: str) -> dict[str, Any]:
    result = run_command(
        "verify_links", "--incremental", link.label, "--format", "json", "--noinput", *args
    )
    assert result.exit_code in (0, 1), result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    [entry] = report["links"]
    assert entry["mode"] == "incremental"
    assert result.exit_code == (1 if entry["orphans"] else 0)
    return entry


def env() -> dict[str, str]:
    return {
        **os.environ,
        "CROSSDB_TEST_USE_TEST_DATABASES": "1",
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }


def start_python(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        env=env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(process: subprocess.Popen[str], line: str) -> None:
    assert process.stdout is not None
    got = process.stdout.readline().strip()
    if got != line:
        process.kill()
        raise AssertionError(f"expected {line!r}, got {got!r}: {process.communicate()[1]}")


class TestWhatIsLogged:
    @pytest.mark.parametrize("kind", list(LINKS))
    def test_a_raw_sql_insert_is_logged_and_its_orphan_found(self, kind):
        link = LINKS[kind]
        alive = link.source.objects.create(**{link.name: link.new_target()})
        key = link.missing_key()
        pk = link.raw_insert(key)

        assert sorted(row.source_pk for row in link.logged()) == sorted([str(alive.pk), str(pk)])
        entry = incremental(link)

        assert (entry["checked"], entry["orphans"], entry["logged"]) == (2, 1, 2)
        assert entry["sample"] == [key if isinstance(key, (int, str)) else str(key)]

    @pytest.mark.parametrize("kind", list(LINKS))
    def test_a_queryset_update_is_logged(self, kind):
        link = LINKS[kind]
        row = link.source.objects.create(**{link.name: link.new_target()})
        with override_settings(CROSSDB_INCREMENTAL_RECHECK_DELAY=0):
            incremental(link)
            assert incremental(link)["orphans"] == 0
        assert link.logged() == []  # past the delay: forgotten

        link.source.objects.filter(pk=row.pk).update(**{link.field.attname: link.missing_key()})

        assert [r.source_pk for r in link.logged()] == [str(row.pk)]
        assert incremental(link)["orphans"] == 1

    def test_an_update_of_another_column_or_to_the_same_key_is_not_logged(self):
        link = LINKS["room"]
        room = CapRoom.objects.create()
        booking = CapBooking.objects.create(room=room)
        WrittenReference.objects.using("asset").all().delete()
        CapBooking.objects.filter(pk=booking.pk).update(room=room)
        CapRoom.objects.filter(pk=room.pk).update(name="renamed")
        assert link.logged() == []

    @pytest.mark.parametrize("kind", ["badge", "room"])
    def test_a_null_key_is_neither_logged_nor_reported(self, kind):
        link = LINKS[kind]
        link.source.objects.create(**{link.name: None})
        assert link.logged() == []
        pk = link.raw_insert(link.missing_key())
        link.source.objects.filter(pk=pk).update(**{link.name: None})

        entry = incremental(link)

        assert (entry["logged"], entry["checked"], entry["orphans"]) == (1, 0, 0)
        assert link.logged() == []  # nothing refers: nothing to check again

    @pytest.mark.parametrize("kind", list(LINKS))
    def test_a_deleted_source_row_is_not_reported(self, kind):
        link = LINKS[kind]
        pk = link.raw_insert(link.missing_key())
        link.source._base_manager.filter(pk=pk)._raw_delete(link.source_alias)

        entry = incremental(link)

        assert (entry["logged"], entry["checked"], entry["orphans"]) == (1, 0, 0)
        assert link.logged() == []


class TestTheLog:
    def test_a_row_is_forgotten_only_by_a_check_past_the_delay(self):
        link = LINKS["badge"]
        CapHolder.objects.create(badge=link.new_target())
        [row] = link.logged()
        with override_settings(CROSSDB_INCREMENTAL_RECHECK_DELAY=3600):
            assert incremental(link)["awaiting_recheck"] == 1
            # Checked again within the delay: kept as it was.
            assert incremental(link)["awaiting_recheck"] == 1
            assert link.logged() == [row]
            assert link.logged()[0].logged_at == row.logged_at
        with override_settings(CROSSDB_INCREMENTAL_RECHECK_DELAY=0):
            entry = incremental(link)
        assert (entry["checked"], entry["awaiting_recheck"]) == (1, 0)
        assert link.logged() == []
        # Forgotten: not read again.
        assert incremental(link)["logged"] == 0

    @pytest.mark.parametrize("kind", BY_SOURCE)
    def test_the_delay_runs_on_the_source_databases_clock(self, kind):
        """A second's delay, for real: kept just after the write, forgotten a second later."""
        link = LINKS[kind]
        link.source.objects.create(**{link.name: link.new_target()})
        with override_settings(CROSSDB_INCREMENTAL_RECHECK_DELAY=1):
            assert incremental(link)["awaiting_recheck"] == 1
            time.sleep(1.2)
            entry = incremental(link)
        assert (entry["checked"], entry["awaiting_recheck"]) == (1, 0)
        assert link.logged() == []

    @pytest.mark.parametrize("kind", BY_SOURCE)
    def test_queries_per_database_do_not_grow_with_the_logged_rows(self, kind):
        link = LINKS[kind]
        counts = []
        for rows in (20, 60):
            targets = [link.new_target() for _ in range(rows // 2)]
            for target in targets * 2:
                link.source.objects.create(**{link.name: target})
            with (
                CaptureQueriesPerDatabase() as captured,
                override_settings(CROSSDB_INCREMENTAL_RECHECK_DELAY=0),
            ):
                entry = incremental(link, "--batch-size", "1000")
            assert (entry["logged"], entry["checked"], entry["orphans"]) == (rows, rows, 0)
            assert link.logged() == []
            counts.append(captured.counts)
            link.source.objects.all().delete()
            WrittenReference.objects.using(link.source_alias).all().delete()
        assert counts[0] == counts[1], counts
        # The log joined to the source rows, the DELETE (and the connection setup the
        # command does); on the target: one look at the table list for the whole run
        # (crossdb's tables may not be migrated there), the probe, the pending and
        # captured keys, the report's pending propagations, captured deletions and
        # truncate markers.
        assert counts[0][link.source_alias] <= 5, counts
        assert counts[0][link.target_alias] <= 7, counts

    def test_pages_write_the_log_once_per_page(self):
        link = LINKS["room"]
        for _ in range(9):
            CapBooking.objects.create(room=link.new_target())
        with (
            CaptureQueriesPerDatabase() as per_three,
            override_settings(CROSSDB_INCREMENTAL_RECHECK_DELAY=0),
        ):
            incremental(link, "--batch-size", "3")
        statements = [q["sql"] for q in per_three["asset"]]
        assert sum(sql.startswith("DELETE") for sql in statements) == 3  # one per page of three
        assert not any(sql.startswith("UPDATE") for sql in statements)
        assert link.logged() == []

    def test_no_delete_signal_sees_the_log_rows(self):
        link = LINKS["room"]
        CapBooking.objects.create(room=link.new_target())
        seen: list[Any] = []

        def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
            seen.append(instance)

        pre_delete.connect(receiver)  # no sender: every model's deletions
        try:
            with override_settings(CROSSDB_INCREMENTAL_RECHECK_DELAY=0):
                assert incremental(link)["logged"] == 1
        finally:
            pre_delete.disconnect(receiver)
        assert link.logged() == []
        assert seen == []

    def test_a_source_whose_primary_key_is_text(self):
        """No integer to join on: the log, then the source rows by primary key."""
        link = Link(CapVisit, "room", CapRoom, "employee", "default")
        CapVisit.objects.create(code="alive", room=link.new_target())
        with connections["employee"].cursor() as cursor:
            table = connections["employee"].ops.quote_name(CapVisit._meta.db_table)
            cursor.execute(f"INSERT INTO {table} (code, room_id) VALUES ('gone', %s)", [10**6])
        CapVisit.objects.create(code="cleared", room=link.new_target())
        CapVisit.objects.filter(code="cleared").update(room=None)
        with (
            override_settings(CROSSDB_INCREMENTAL_RECHECK_DELAY=0),
            CaptureQueriesPerDatabase() as captured,
        ):
            entry = incremental(link)
        assert (entry["logged"], entry["checked"], entry["orphans"]) == (3, 2, 1)
        assert [row.source_pk for row in link.logged()] == ["gone"]
        # The log, the source rows by key, the DELETE (and the connection setup).
        assert captured.counts["employee"] <= 6, captured.counts

    def test_an_orphan_stays_reported_until_repaired(self):
        link = LINKS["room"]
        pk = link.raw_insert(link.missing_key())
        with override_settings(CROSSDB_INCREMENTAL_RECHECK_DELAY=0):
            assert incremental(link)["orphans"] == 1
            assert incremental(link)["orphans"] == 1  # past its second check: still there

            result = run_command(
                "verify_links", "--incremental", link.label, "--fix", "set-null", "--noinput"
            )

            assert result.exit_code == 0, result.stdout + result.stderr
            assert CapBooking.objects.get(pk=pk).room_id is None
            assert link.logged() == []


class TestTheRace:
    @pytest.mark.parametrize("kind", list(LINKS))
    def test_a_reference_written_while_its_target_is_being_deleted(self, kind):
        """
        The target's deletion is not committed when the reference is written and first
        checked; capture is suspended for it, as if its propagation had run before the
        reference was visible. The first check was within the delay of the write, so the
        row stays, and the check past the delay finds the orphan.
        """
        link = LINKS[kind]
        target = link.new_target()
        deleting = start_python(
            DELETE_SCRIPT, link.target_alias, link.target._meta.label, str(target.pk)
        )
        try:
            wait_for(deleting, "deleted")
            link.source.objects.create(**{link.name: target})
            with override_settings(CROSSDB_INCREMENTAL_RECHECK_DELAY=3600):
                first = incremental(link)
            assert (first["checked"], first["orphans"]) == (1, 0)  # the target is still there
            assert first["awaiting_recheck"] == 1  # logged within the delay: kept
            assert deleting.stdin is not None
            deleting.stdin.write("commit\n")
            deleting.stdin.flush()
            wait_for(deleting, "committed")
            # Past the delay (as if an hour had passed): checked once more before it is forgotten.
            with override_settings(CROSSDB_INCREMENTAL_RECHECK_DELAY=0):
                second = incremental(link)
        finally:
            deleting.kill()
            deleting.communicate()
        assert not link.target.objects.filter(pk=target.pk).exists()
        assert (second["checked"], second["orphans"]) == (1, 1)


DELETE_SCRIPT = """
import sys
import django

django.setup()
from django.apps import apps
from django.db import transaction
from crossdb.capture import suspended

alias, label, pk = sys.argv[1:4]
with transaction.atomic(using=alias), suspended(using=alias):
    apps.get_model(label)._base_manager.filter(pk=pk)._raw_delete(alias)
    print("deleted", flush=True)
    sys.stdin.readline()
print("committed", flush=True)
"""

KILL_SCRIPT = """
import sys, time
import django

django.setup()
from django.core.management import call_command
from django.conf import settings
from crossdb.verification.incremental import IncrementalVerifier

settings.CROSSDB_INCREMENTAL_RECHECK_DELAY = 0  # every row is due: only the kill keeps them

def checked_not_written(self, *args, **kwargs):
    print("checked", flush=True)
    time.sleep(120)

IncrementalVerifier._settle = checked_not_written
call_command("verify_links", "--incremental", sys.argv[1], "--batch-size", "1")
"""


class TestKilledRun:
    @pytest.mark.parametrize("kind", BY_SOURCE)
    def test_a_run_killed_after_a_check_loses_nothing(self, kind):
        link = LINKS[kind]
        link.raw_insert(link.missing_key())
        link.source.objects.create(**{link.name: link.new_target()})
        before = [(r.pk, r.logged_at) for r in link.logged()]

        running = start_python(KILL_SCRIPT, link.label)
        try:
            wait_for(running, "checked")  # the first page's orphan is checked, the log not written
        finally:
            running.kill()  # SIGKILL
            running.communicate()

        assert running.returncode == -9
        assert [(r.pk, r.logged_at) for r in link.logged()] == before
        entry = incremental(link)
        assert (entry["checked"], entry["orphans"]) == (2, 1)


def log_name(label: str) -> str:
    """The name the code gives the link's log trigger (its table and columns in it)."""
    return LogSpec.of(field_for(label)).name


class TestInstalling:
    @pytest.mark.parametrize("kind", BY_SOURCE)
    def test_the_operation_and_its_reverse_on_the_sources_database(self, kind):
        link = LINKS[kind]
        key = link.field.target_field.name
        operation = InstallCaptureTriggers(link=link.label, target=link.target._meta.label, key=key)
        state = ProjectState.from_apps(apps)
        connection = connections[link.source_alias]
        name = log_name(link.label)
        assert name in installed_log_triggers(connection)
        try:
            with connection.schema_editor() as editor:
                operation.database_backwards("integrity", editor, state, state)
            assert name not in installed_log_triggers(connection)
            link.raw_insert(link.missing_key())
            assert link.logged() == []
            assert [m.id for m in check_log_triggers(databases=[link.source_alias])] == [
                "crossdb.W044"
            ]
        finally:
            with connection.schema_editor() as editor:
                operation.database_forwards("integrity", editor, state, state)
        assert name in installed_log_triggers(connection)
        pk = link.raw_insert(link.missing_key())
        assert [r.source_pk for r in link.logged()] == [str(pk)]
        assert check_log_triggers(databases=[link.source_alias]) == []

    def test_other_databases_are_left_alone(self):
        link = LINKS["room"]  # written in asset, its target in default
        operation = RemoveCaptureTriggers(link=link.label, target="integrity.CapRoom", key="id")
        state = ProjectState.from_apps(apps)
        with connections["employee"].schema_editor() as editor:
            operation.database_forwards("integrity", editor, state, state)
        assert log_name(link.label) in installed_log_triggers(connections["asset"])

    def test_a_missing_log_trigger_warns_and_migrate_puts_it_back(self):
        link = LINKS["room"]
        remove_log(connections["asset"], link.label)

        assert check_log_triggers(databases=["asset"]) == [
            checks.Warning(
                "The trigger logging written references of integrity.CapBooking.room is "
                "missing from database 'asset': `verify_links --incremental` does not see "
                "the references written there.",
                hint="Run `manage.py migrate --database asset`: it installs the trigger.",
                obj=link.field,
                id="crossdb.W044",
            )
        ]
        install_after_migrate(using="asset")
        assert check_log_triggers(databases=["asset"]) == []

    def test_capture_ddl_prints_the_log_triggers(self):
        result = run_command("capture_ddl", "integrity.CapBooking.room")
        assert result.exit_code == 0, result.stderr
        name = log_name("integrity.CapBooking.room")
        assert "-- In database 'asset' (the source's)" in result.stdout
        assert f"CREATE TRIGGER {name} AFTER INSERT ON" in result.stdout
        removal = run_command("capture_ddl", "integrity.CapBooking.room", "--remove")
        assert f"DROP TRIGGER IF EXISTS {name}_u;" in removal.stdout


class TestCommand:
    def test_a_link_without_capture_is_refused(self):
        result = run_command("verify_links", "--incremental", "hr.Employee.user")
        assert result.exit_code == 2
        assert "none of the selected links has capture_deletes=True" in result.stderr

    def test_links_without_capture_are_skipped_with_a_note(self):
        result = run_command("verify_links", "--incremental", "integrity")
        assert result.exit_code == 0, result.stderr
        assert "Skipped (no capture_deletes=True" in result.stderr
        assert "integrity.CapBooking.room" in result.stdout
        assert "integrity.Sticker.tag" not in result.stdout

    def test_partition_is_refused(self):
        result = run_command("verify_links", "--incremental", "--partition", "0/2")
        assert result.exit_code == 2
        assert "--partition cannot be combined with --incremental" in result.stderr

    @pytest.mark.parametrize("value", [-1, "60", float("nan")])
    def test_the_delay_setting_is_checked(self, value):
        with override_settings(CROSSDB_INCREMENTAL_RECHECK_DELAY=value):
            [error] = check_numbers()
        assert error.id == "crossdb.E034"
        assert error.obj == "settings.CROSSDB_INCREMENTAL_RECHECK_DELAY"
