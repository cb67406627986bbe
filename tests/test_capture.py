"""
Deletions captured by triggers (``capture_deletes=True``): whoever deletes a target, its
``on_delete`` is applied. Each target lives in another database (on the real topology:
``CapAccount`` on PostgreSQL, ``CapBadge`` on MariaDB, ``CapToken`` on SQLite).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import checks
from django.core.management import call_command
from django.db import connections, models, transaction
from django.db.migrations.graph import MigrationGraph
from django.db.migrations.questioner import MigrationQuestioner
from django.db.migrations.state import ProjectState
from django.test.utils import isolate_apps, override_settings
from django.utils import timezone

from crossdb import CrossDBForeignKey
from crossdb.autodetector import CaptureAutodetector
from crossdb.capture import expected_spec, field_for, install_after_migrate, remove, suspended
from crossdb.capture_checks import check_capture
from crossdb.capture_queue import BATCH, batch_keys, expand_batches
from crossdb.capture_sql import (
    REGISTRY_TABLE,
    TriggerSpec,
    install_sql,
    installed_triggers,
    is_links_trigger,
    legacy_trigger_name,
    link_prefix,
)
from crossdb.models import CapturedDeletion
from crossdb.operations import InstallCaptureTriggers, RemoveCaptureTriggers
from crossdb.propagation import propagate_pending
from crossdb.testing import CaptureQueriesPerDatabase
from tests import helpers
from tests.helpers import all_pending
from tests.integrity.models import (
    CapAccount,
    CapBadge,
    CapHolder,
    CapMember,
    CapMemberNote,
    CapToken,
    CapUse,
)

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)
REPO = Path(__file__).resolve().parent.parent
LINKS = {
    "account": ("integrity.CapMember.account", "default"),
    "badge": ("integrity.CapHolder.badge", "employee"),
    "token": ("integrity.CapToken.uses", "asset"),
}


def trigger_name(link: str) -> str:
    """The name of ``link``'s trigger as the code stands (its table, key column and type)."""
    spec = expected_spec(field_for(link))
    assert spec is not None
    return spec.name


def queued(alias: str, kind: str = "delete") -> list[CapturedDeletion]:
    """
    The queue's rows of ``kind`` in ``alias``; for ``delete``, PostgreSQL's batch rows
    read as the rows they become (one per key, unsaved), without expanding them.
    """
    rows = CapturedDeletion.objects.using(alias)
    if kind != "delete":
        return list(rows.filter(kind=kind))
    found = []
    for row in rows.filter(kind__in=("delete", BATCH)):
        if row.kind != BATCH:
            found.append(row)
            continue
        for key in batch_keys(row.target_key):
            found.append(
                CapturedDeletion(
                    link=row.link, target_key=key, kind="delete", created_at=row.created_at
                )
            )
    return found


def all_queued() -> list[CapturedDeletion]:
    return [row for alias in connections for row in CapturedDeletion.objects.using(alias)]


def raw_delete(model: type[models.Model], alias: str, keys: list[object]) -> None:
    connection = connections[alias]
    qn = connection.ops.quote_name
    field = model._meta.pk
    values = [field.get_db_prep_value(key, connection) for key in keys]
    marks = ", ".join(["%s"] * len(values))
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {qn(model._meta.db_table)} WHERE {qn(field.column)} IN ({marks})",
            values,
        )


class Scenario:
    """One target with two references, and a bystander that must survive."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        if kind == "account":
            self.target, self.alias = CapAccount.objects.create(name="gone"), "default"
            self.other = CapAccount.objects.create(name="kept")
            self.refs = [CapMember.objects.create(account=self.target) for _ in range(2)]
            CapMemberNote.objects.create(member=self.refs[0])
            self.kept = CapMember.objects.create(account=self.other)
        elif kind == "badge":
            self.target, self.alias = CapBadge.objects.create(code="abc"), "employee"
            self.other = CapBadge.objects.create(code="abd")
            self.refs = [CapHolder.objects.create(badge=self.target) for _ in range(2)]
            self.kept = CapHolder.objects.create(badge=self.other)
        else:
            self.target, self.alias = CapToken.objects.create(id=uuid.uuid4()), "asset"
            self.other = CapToken.objects.create(id=uuid.uuid4())
            self.refs = [CapUse.objects.create(token=self.target) for _ in range(2)]
            self.kept = CapUse.objects.create(token=self.other)

    def assert_applied(self) -> None:
        ref_model = type(self.refs[0])
        if self.kind == "badge":  # SET_NULL
            for ref in self.refs:
                ref.refresh_from_db()
                assert ref.badge_id is None
        else:
            assert not ref_model.objects.filter(pk__in=[r.pk for r in self.refs]).exists()
            assert not CapMemberNote.objects.exists()
        self.kept.refresh_from_db()
        assert self.kept.pk is not None
        assert getattr(self.kept, type(self.kept)._meta.local_fields[1].attname) == self.other.pk

    def assert_untouched(self) -> None:
        ref_model = type(self.refs[0])
        field = ref_model._meta.local_fields[1].attname
        values = list(
            ref_model.objects.filter(pk__in=[r.pk for r in self.refs]).values_list(field, flat=True)
        )
        assert values == [self.target.pk, self.target.pk]


KINDS = ["account", "badge", "token"]
# The test apps have no migrations: write them as if they were new.
QUESTIONER = MigrationQuestioner(specified_apps={"integrity"})


def test_the_triggers_are_installed_in_each_targets_database():
    for kind, (link, alias) in LINKS.items():
        if kind == "token":
            link = "integrity.CapUse.token"
        assert trigger_name(link) in installed_triggers(connections[alias]), (link, alias)


def queue_indexes(alias: str) -> list[list[str]]:
    """The columns of each index of the queue table in ``alias`` but its primary key."""
    with connections[alias].cursor() as cursor:
        constraints = connections[alias].introspection.get_constraints(
            cursor, CapturedDeletion._meta.db_table
        )
    return sorted(
        about["columns"]
        for about in constraints.values()
        if about["index"] and not about["primary_key"]
    )


@pytest.mark.parametrize("kind", KINDS)
def test_the_queue_indexes_only_its_primary_key_and_migrates_with_triggers_installed(kind):
    """
    Each index entry would be one more write for every deleted row a trigger records.
    Migration 0005 drops the two that 0003 made, and its reverse makes them again,
    while the capture triggers of the same database write into the table (on SQLite
    a rebuilt table failed there: "error in trigger ...: no such table").
    """
    alias = LINKS[kind][1]
    assert queue_indexes(alias) == []
    call_command("migrate", "crossdb", "0004", database=alias, verbosity=0)
    try:
        assert queue_indexes(alias) == [["claimed_until"], ["created_at"]]
    finally:
        call_command("migrate", "crossdb", database=alias, verbosity=0)
    assert queue_indexes(alias) == []
    scenario = Scenario(kind)
    raw_delete(type(scenario.target), scenario.alias, [scenario.target.pk])
    assert propagate_pending().applied == 1
    scenario.assert_applied()


class TestOutsideTheORM:
    @pytest.mark.parametrize("kind", KINDS)
    def test_a_raw_sql_delete_is_captured_and_propagated(self, kind):
        scenario = Scenario(kind)

        raw_delete(type(scenario.target), scenario.alias, [scenario.target.pk])

        [row] = queued(scenario.alias)
        assert row.claim_token == ""
        scenario.assert_untouched()
        result = propagate_pending()
        assert (result.applied, result.failed) == (1, 0), result.errors
        scenario.assert_applied()
        assert all_queued() == []
        # Applying again finds nothing to do.
        assert propagate_pending().applied == 0

    def test_raw_delete_of_a_queryset(self):
        scenario = Scenario("account")
        CapAccount.objects.filter(pk=scenario.target.pk)._raw_delete("default")
        propagate_pending()
        scenario.assert_applied()

    def test_a_deletion_by_another_process(self):
        scenario = Scenario("badge")
        script = (
            "import django; django.setup()\n"
            "from django.db import connections\n"
            "with connections['employee'].cursor() as cursor:\n"
            "    cursor.execute('DELETE FROM integrity_capbadge WHERE code = %s', ['abc'])\n"
        )
        done = run_python(script)
        assert done.returncode == 0, done.stderr
        propagate_pending()
        scenario.assert_applied()

    def test_a_bulk_delete_is_applied_in_bounded_queries(self):
        accounts = CapAccount.objects.bulk_create(CapAccount(name=f"a{i}") for i in range(1500))
        accounts = list(CapAccount.objects.all())
        CapMember.objects.bulk_create(CapMember(account=a) for a in accounts)

        with connections["default"].cursor() as cursor:
            cursor.execute("DELETE FROM integrity_capaccount")
        assert len(queued("default")) == 1500

        with CaptureQueriesPerDatabase() as captured:
            result = propagate_pending()
        assert (result.applied, result.failed) == (1500, 0)
        assert not CapMember.objects.exists()
        assert all_queued() == []
        assert captured.counts["default"] < 40, captured.counts
        assert captured.counts["employee"] < 40, captured.counts

    @pytest.mark.parametrize("kind", KINDS)
    def test_each_batch_reads_the_queue_by_its_key_range(self, kind):
        # claim_token has no index: a statement selecting by the token alone reads the whole
        # queue, once per batch, and 100,000 captured rows then take minutes, not seconds.
        model, alias = {"account": (CapAccount, "default"), "badge": (CapBadge, "employee")}.get(
            kind, (CapToken, "asset")
        )
        made = {
            "account": lambda i: CapAccount(name=f"a{i}"),
            "badge": lambda i: CapBadge(code=f"b{i}"),
            "token": lambda i: CapToken(id=uuid.uuid4()),
        }[kind]
        model.objects.bulk_create(made(i) for i in range(1200))
        with connections[alias].cursor() as cursor:
            cursor.execute(f"DELETE FROM {model._meta.db_table}")

        with CaptureQueriesPerDatabase(using=[alias]) as captured:
            result = propagate_pending(using=alias)

        assert (result.applied, result.failed) == (1200, 0), result.errors
        by_token = [
            q["sql"]
            for q in captured[alias]
            if re.search(r"WHERE .*[`\"]claim_token[`\"] = ", q["sql"])
        ]
        assert len(by_token) >= 3 * 3, by_token  # the lease, a batch, the applied rows' removal
        unbounded = [sql for sql in by_token if not re.search(r"BETWEEN| IN \(", sql)]
        assert unbounded == [], unbounded[:2]
        assert all_queued() == []

    def test_a_target_recreated_with_the_same_key_keeps_its_references(self):
        scenario = Scenario("badge")
        raw_delete(CapBadge, "employee", ["abc"])
        CapBadge.objects.create(code="abc")

        propagate_pending()

        scenario.assert_untouched()
        assert all_queued() == []


class TestORMDeletions:
    @pytest.mark.parametrize("kind", KINDS)
    def test_the_trigger_row_is_the_record_and_is_applied_at_once(self, kind):
        scenario = Scenario(kind)

        scenario.target.delete()

        scenario.assert_applied()
        assert all_pending() == []
        assert all_queued() == []

    def test_suspended_capture_falls_back_to_a_pending_row(self):
        scenario = Scenario("account")
        with suspended(using="default"):
            scenario.target.delete()
        scenario.assert_applied()
        assert all_queued() == []


class TestBreaker:
    @pytest.mark.parametrize("kind", KINDS)
    def test_nothing_is_captured_inside_suspended(self, kind):
        scenario = Scenario(kind)
        with suspended(using=scenario.alias):
            raw_delete(type(scenario.target), scenario.alias, [scenario.target.pk])
        assert all_queued() == []
        # Capture is back on after the block.
        raw_delete(type(scenario.other), scenario.alias, [scenario.other.pk])
        assert len(queued(scenario.alias)) == 1

    @pytest.mark.parametrize("kind", KINDS)
    def test_flush_of_one_database_leaves_the_others_untouched(self, kind):
        scenario = Scenario(kind)

        call_command("flush", database=scenario.alias, interactive=False, verbosity=0)

        assert not type(scenario.target).objects.exists()
        assert all_queued() == []
        assert propagate_pending().applied == 0
        scenario.assert_untouched()

    def test_truncate_without_the_breaker_leaves_a_marker(self):
        if connections["default"].vendor != "postgresql":
            pytest.skip("TRUNCATE fires triggers on PostgreSQL only")
        Scenario("account")
        with connections["default"].cursor() as cursor:
            cursor.execute("TRUNCATE integrity_capaccount")
        [marker] = queued("default", kind="truncate")
        assert marker.link == "integrity.CapMember.account"
        assert propagate_pending().applied == 0  # no key to apply
        [warning] = [m for m in check_capture(databases=["default"]) if m.id == "crossdb.W042"]
        assert "integrity.CapMember.account" in warning.msg
        CapturedDeletion.objects.using("default").all().delete()


def run_python(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CROSSDB_TEST_USE_TEST_DATABASES": "1",
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


KILL_SCRIPT = """
import os, signal, sys
import django

django.setup()
from crossdb import capture_queue
from crossdb.propagation import propagate_pending
from tests.integrity.models import CapAccount

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if sys.argv[1] == "after-commit":
    capture_queue.after_commit = die  # the deletion and its trigger's row committed
    CapAccount.objects.get(name="gone").delete()
elif sys.argv[1] == "mid-expansion":
    from django.db import transaction

    with transaction.atomic():  # the batch turned into key rows, not committed
        capture_queue.expand_batches("default")
        die()
else:
    capture_queue._forget = die  # propagated and committed, the rows not yet removed
    propagate_pending()
"""


def expire_claims() -> None:
    helpers.expire_claims(CapturedDeletion)


class TestKilledProcess:
    @pytest.mark.parametrize("stage", ["after-commit", "before-forget"])
    def test_nothing_lost_nothing_applied_twice(self, stage):
        scenario = Scenario("account")
        if stage == "before-forget":
            raw_delete(CapAccount, "default", [scenario.target.pk])

        killed = run_python(KILL_SCRIPT, stage)

        assert killed.returncode == -9, killed.stderr
        assert not CapAccount.objects.filter(name="gone").exists()
        assert CapMember.objects.filter(pk=scenario.refs[0].pk).exists() == (
            stage == "after-commit"
        )
        [row] = queued("default")
        assert row.claim_token
        # The dead process's claim holds until its lease ends.
        assert propagate_pending().applied == 0

        expire_claims()
        result = propagate_pending()

        assert (result.applied, result.failed) == (1, 0)
        scenario.assert_applied()
        assert all_queued() == [] and all_pending() == []
        if stage == "before-forget":
            assert result.rows_changed == 0  # re-applied: nothing left to change


def batches(alias: str) -> list[tuple[str, list[str]]]:
    rows = CapturedDeletion.objects.using(alias).filter(kind=BATCH).order_by("pk")
    return [(row.link, sorted(batch_keys(row.target_key))) for row in rows]


@pytest.fixture
def postgresql_target():
    if connections["default"].vendor != "postgresql":
        pytest.skip("batch rows are written by PostgreSQL's statement-level trigger only")


@pytest.mark.usefixtures("postgresql_target")
class TestBatchesOnPostgreSQL:
    """PostgreSQL's trigger writes one row per DELETE statement; it becomes a row per key."""

    def test_one_row_per_statement_expanded_then_applied(self):
        accounts = [CapAccount.objects.create(name=f"gone {i}") for i in range(3)]
        members = [CapMember.objects.create(account=account) for account in accounts]
        kept = CapMember.objects.create(account=CapAccount.objects.create(name="kept"))

        raw_delete(CapAccount, "default", [account.pk for account in accounts])

        expected = sorted(str(account.pk) for account in accounts)
        assert batches("default") == [("integrity.CapMember.account", expected)]
        assert CapturedDeletion.objects.filter(kind="delete").count() == 0
        result = propagate_pending()
        assert (result.applied, result.failed) == (3, 0), result.errors
        assert not CapMember.objects.filter(pk__in=[m.pk for m in members]).exists()
        assert CapMember.objects.filter(pk=kept.pk).exists()
        assert all_queued() == []

    def test_verify_links_counts_a_batchs_keys_as_pending(self):
        accounts = [CapAccount.objects.create(name=f"gone {i}") for i in range(2)]
        for account in accounts:
            CapMember.objects.create(account=account)
        raw_delete(CapAccount, "default", [account.pk for account in accounts])
        out = io.StringIO()
        call_command("verify_links", "integrity.CapMember.account", "--format", "json", stdout=out)
        report = json.loads(out.getvalue())
        [link] = report["links"]
        assert (link["orphans"], link["pending"]) == (0, 2)
        [captured] = report["captured_deletions"]
        assert (captured["link"], captured["rows"]) == ("integrity.CapMember.account", 2)

    def test_a_batch_another_transaction_holds_is_left_to_it(self):
        """A real second connection locks the batch row: expansion skips it, then takes it."""
        scenario = Scenario("account")
        raw_delete(CapAccount, "default", [scenario.target.pk])
        locked, release, done = threading.Event(), threading.Event(), threading.Event()

        def hold() -> None:
            try:
                with transaction.atomic(using="default"):
                    list(CapturedDeletion.objects.filter(kind=BATCH).select_for_update())
                    locked.set()
                    release.wait(30)
            finally:
                connections.close_all()
                done.set()

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert locked.wait(30)
            assert expand_batches("default") == 0
            assert len(batches("default")) == 1
        finally:
            release.set()
            holder.join(30)
        assert done.is_set()
        assert expand_batches("default") == 1
        assert batches("default") == []
        assert propagate_pending().applied == 1
        scenario.assert_applied()

    def test_a_process_killed_while_expanding_leaves_the_batch(self):
        scenario = Scenario("account")
        raw_delete(CapAccount, "default", [scenario.target.pk])

        killed = run_python(KILL_SCRIPT, "mid-expansion")

        assert killed.returncode == -9, killed.stderr
        assert batches("default") == [("integrity.CapMember.account", [str(scenario.target.pk)])]
        assert CapturedDeletion.objects.filter(kind="delete").count() == 0
        assert propagate_pending().applied == 1
        scenario.assert_applied()
        assert all_queued() == []

    def test_a_large_statement_writes_a_batch_per_batch_keys(self, monkeypatch):
        """One value holds at most 1 GB: past BATCH_KEYS keys, several rows of them."""
        from crossdb import capture_sql

        spec = expected_spec(field_for("integrity.CapMember.account"))
        assert spec is not None
        connection = connections["default"]
        monkeypatch.setattr(capture_sql, "BATCH_KEYS", 2)
        with connection.cursor() as cursor:
            for statement in install_sql(spec, connection):
                cursor.execute(statement)
        try:
            accounts = [CapAccount.objects.create(name=f"gone {i}") for i in range(5)]
            members = [CapMember.objects.create(account=account) for account in accounts]
            raw_delete(CapAccount, "default", [account.pk for account in accounts])
        finally:
            monkeypatch.undo()
            with connection.cursor() as cursor:
                for statement in install_sql(spec, connection):
                    cursor.execute(statement)

        found = batches("default")
        assert sorted(len(keys) for _link, keys in found) == [1, 2, 2]
        assert sorted(key for _link, keys in found for key in keys) == sorted(
            str(account.pk) for account in accounts
        )
        assert propagate_pending().applied == 5
        assert not CapMember.objects.filter(pk__in=[m.pk for m in members]).exists()

    def test_an_orm_deletion_claims_the_keys_of_its_own_batch(self):
        """No PendingPropagation of its own: the batch's key rows are the record."""
        scenario = Scenario("account")
        scenario.target.delete()
        scenario.assert_applied()
        assert all_queued() == [] and all_pending() == []


class TestMigrations:
    def test_install_and_reverse(self):
        operation = InstallCaptureTriggers(
            link="integrity.CapHolder.badge", target="integrity.CapBadge", key="code"
        )
        state = ProjectState.from_apps(django_apps())
        connection = connections["employee"]
        name = trigger_name("integrity.CapHolder.badge")

        with connection.schema_editor() as editor:
            operation.database_backwards("integrity", editor, state, state)
        assert name not in installed_triggers(connection)
        raw_delete(CapBadge, "employee", [CapBadge.objects.create(code="x").pk])
        assert all_queued() == []

        with connection.schema_editor() as editor:
            operation.database_forwards("integrity", editor, state, state)
        assert name in installed_triggers(connection)
        raw_delete(CapBadge, "employee", [CapBadge.objects.create(code="y").pk])
        assert len(queued("employee")) == 1

    def test_other_databases_are_left_alone(self):
        operation = RemoveCaptureTriggers(
            link="integrity.CapHolder.badge", target="integrity.CapBadge", key="code"
        )
        state = ProjectState.from_apps(django_apps())
        with connections["default"].schema_editor() as editor:
            operation.database_forwards("integrity", editor, state, state)
        assert trigger_name("integrity.CapHolder.badge") in installed_triggers(
            connections["employee"]
        )

    def test_the_autodetector_writes_the_operations(self):
        new = ProjectState.from_apps(django_apps())
        old = new.clone()
        fields = old.models["integrity", "capholder"].fields
        fields["badge"] = fields["badge"].clone()
        fields["badge"].capture_deletes = False

        changes = CaptureAutodetector(old, new, QUESTIONER).changes(graph=MigrationGraph())
        operations = [op for m in changes["integrity"] for op in m.operations]
        assert [type(op).__name__ for op in operations] == ["AlterField", "InstallCaptureTriggers"]
        [install] = [op for op in operations if isinstance(op, InstallCaptureTriggers)]
        assert install.deconstruct()[2] == {
            "link": "integrity.CapHolder.badge",
            "target": "integrity.CapBadge",
            "key": "code",
        }

        back = CaptureAutodetector(new, old, QUESTIONER).changes(graph=MigrationGraph())
        removals = [op for m in back["integrity"] for op in m.operations]
        assert any(isinstance(op, RemoveCaptureTriggers) for op in removals)

    def test_a_rebuilt_sqlite_table_gets_its_triggers_back(self):
        connection = connections["asset"]  # SQLite in both topologies
        name = trigger_name("integrity.CapUse.token")
        with connection.schema_editor() as editor:
            editor._remake_table(CapToken)
        assert name not in installed_triggers(connection)
        [warning] = [m for m in check_capture(databases=["asset"]) if m.id == "crossdb.W040"]
        assert warning.obj is CapUse._meta.get_field("token")

        install_after_migrate(using="asset")

        assert name in installed_triggers(connection)
        assert not [m for m in check_capture(databases=["asset"]) if m.id == "crossdb.W040"]

    @pytest.mark.parametrize("kind", KINDS)
    def test_a_trigger_for_another_column_is_stale_and_migrate_replaces_it(self, kind):
        # What a trigger named for the key column before a rename looks like.
        link, alias, spec = triggers_renamed(kind, lambda link: link_prefix(link) + "_000000")
        [warning] = [m for m in check_capture(databases=[alias]) if m.id == "crossdb.W040"]
        assert warning.obj is field_for(link)
        assert "is for another table or key column than" in warning.msg
        assert f"{spec.table}.{spec.column}" in warning.msg

        install_after_migrate(using=alias)

        connection = connections[alias]
        assert {n for n in installed_triggers(connection) if is_links_trigger(n, link)} == {
            n
            for n in (spec.name, f"{spec.name}_t")
            if connection.vendor == "postgresql" or n == spec.name
        }
        assert not [m for m in check_capture(databases=[alias]) if m.id == "crossdb.W040"]
        scenario = Scenario(kind)
        raw_delete(type(scenario.target), alias, [scenario.target.pk])
        assert len(queued(alias)) == 1  # once: the old trigger is gone

    def test_the_row_format_is_in_the_name(self, monkeypatch):
        """A release that changes what the triggers write makes `migrate` replace them."""
        from crossdb import capture_sql

        spec = expected_spec(field_for("integrity.CapMember.account"))
        assert spec is not None
        current = spec.name
        monkeypatch.setattr(capture_sql, "ROW_FORMAT", "1")
        assert spec.name != current
        assert spec.name.startswith(link_prefix(spec.link) + "_")

    @pytest.mark.parametrize("kind", KINDS)
    def test_old_style_names_are_removed(self, kind):
        # What an install before names carried the table and column left behind.
        link, alias, _spec = triggers_renamed(kind, legacy_trigger_name)
        connection = connections[alias]
        assert legacy_trigger_name(link) in installed_triggers(connection)

        remove(connection, link)

        assert not [n for n in installed_triggers(connection) if is_links_trigger(n, link)]
        scenario = Scenario(kind)
        raw_delete(type(scenario.target), alias, [scenario.target.pk])
        assert all_queued() == []
        install_after_migrate(using=alias)  # the test apps have no migrations: put back
        assert trigger_name(link) in installed_triggers(connection)


def triggers_renamed(kind: str, name: Callable[[str], str]) -> tuple[str, str, TriggerSpec]:
    """Replace the triggers of ``kind``'s link by the same ones named ``name(link)``."""
    link, alias = LINKS[kind]
    link = "integrity.CapUse.token" if kind == "token" else link
    connection = connections[alias]
    spec = expected_spec(field_for(link))
    assert spec is not None
    remove(connection, link)
    with connection.cursor() as cursor:
        for statement in install_sql(spec, connection):
            cursor.execute(statement.replace(spec.name, name(link)))
        # Listed as installed, as a migration leaves it.
        cursor.execute(f"INSERT INTO {REGISTRY_TABLE} (link) VALUES (%s)", [link])
    return link, alias, spec


def django_apps():
    from django.apps import apps

    return apps


class TestChecks:
    def test_w043_counts_the_old_deleted_keys_of_a_database(self):
        """PostgreSQL's batch row of two keys counts two, as two rows elsewhere do."""
        accounts = [CapAccount.objects.create(name=f"gone {i}") for i in range(2)]
        for account in accounts:
            CapMember.objects.create(account=account)
        raw_delete(CapAccount, "default", [account.pk for account in accounts])

        def w043() -> list[str]:
            found = check_capture(databases=["default"])
            return [m.msg for m in found if m.id == "crossdb.W043"]

        with override_settings(CROSSDB_PENDING_WARN_AGE=60):
            assert w043() == []  # younger than the setting
            CapturedDeletion.objects.update(created_at=timezone.now() - timedelta(hours=2))
            [message] = w043()
        assert message.startswith(
            "2 captured deletion(s) in database 'default' are older than "
            "CROSSDB_PENDING_WARN_AGE=60 seconds; the oldest is 72"
        ), message
        with override_settings(CROSSDB_PENDING_WARN_AGE=None):
            assert w043() == []

    @isolate_apps("tests.integrity")
    def test_an_unsupported_key_type(self):
        class Day(models.Model):
            day = models.DateField(unique=True)

            class Meta:
                app_label = "integrity"

        class Entry(models.Model):
            day = CrossDBForeignKey(Day, models.CASCADE, to_field="day", capture_deletes=True)

            class Meta:
                app_label = "integrity"

        field = Entry._meta.get_field("day")
        errors = [e for e in field.check() if e.id.startswith("crossdb.E04")]
        assert errors == [
            checks.Error(
                "capture_deletes=True: the target key integrity.Day.day is a DateField; "
                "deletions are captured for integer, character and UUID keys only.",
                hint="Remove capture_deletes=True (run `manage.py verify_links` on a schedule "
                "instead), or point to_field at an integer, character or UUID key.",
                obj=field,
                id="crossdb.E041",
            )
        ]

    @isolate_apps("tests.integrity")
    def test_a_policy_that_is_not_propagated(self):
        class Target(models.Model):
            class Meta:
                app_label = "integrity"

        class Ref(models.Model):
            target = CrossDBForeignKey(Target, models.PROTECT, capture_deletes=True)

            class Meta:
                app_label = "integrity"

        field = Ref._meta.get_field("target")
        [error] = [e for e in field.check() if e.id.startswith("crossdb.E04")]
        assert error.id == "crossdb.E040"
        assert "PROTECT" in error.msg

    def test_deconstruct_keeps_the_option(self):
        field = CapHolder._meta.get_field("badge")
        assert field.deconstruct()[3]["capture_deletes"] is True
        assert "capture_deletes" not in CapMemberNote._meta.get_field("member").deconstruct()[3]


def test_capture_ddl_prints_the_sql():
    from tests.helpers import run_command

    result = run_command("capture_ddl", "integrity.CapMember.account", "--database", "asset")
    assert result.exit_code == 0, result.stderr
    assert "CREATE TRIGGER crossdb_cap_" in result.stdout
    assert "crossdb_captureddeletion" in result.stdout
    assert run_command("capture_ddl", "integrity.Nope.x").exit_code == 2
