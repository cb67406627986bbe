"""The verification engine, manage.py verify_links and the database check."""

from __future__ import annotations

import io
import json
import os
import platform
import re
import subprocess
import sys
import threading
import uuid
from collections import Counter
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path

import django
import pytest
from django.contrib.auth.models import User
from django.core import checks
from django.core.management import call_command
from django.db import connections
from django.test.utils import CaptureQueriesContext, override_settings

from crossdb.verification import Partition, Verifier, engine, select_links
from tests.helpers import assert_num_queries_per_db, run_command, without_envelope
from tests.hr.models import Employee, Order, Visit
from tests.integrity.models import Account, Membership, MembershipNote
from tests.people.models import CodeTarget, UUIDTarget

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def employees_with_orphans(good: int, orphan_keys: list[int]) -> list[User]:
    User.objects.bulk_create(User(username=f"v{i}") for i in range(good))
    users = list(User.objects.order_by("pk"))
    Employee.objects.bulk_create(Employee(user_id=u.pk, name=u.username) for u in users)
    Employee.objects.bulk_create(Employee(user_id=k, name=f"orphan{k}") for k in orphan_keys)
    return users


def verify(*labels: str, **options):
    result = run_command("verify_links", *labels, format="json", **options)
    return result, json.loads(result.stdout) if result.stdout.strip().startswith("{") else None


class TestReport:
    def test_json_document(self):
        employees_with_orphans(5, [900001, 900001, 900002])

        result, document = verify("hr.Employee", "hr.Badge")

        assert result.exit_code == 1
        assert document["schema_version"] == 1
        assert document["versions"] == {
            "crossdb": "0.1.0.dev0",
            "django": django.get_version(),
            "python": platform.python_version(),
        }
        assert document["databases"] == ["default", "employee"]
        started = datetime.fromisoformat(document["started_at"])
        finished = datetime.fromisoformat(document["finished_at"])
        assert started <= finished and started.utcoffset() == timedelta(0)
        assert document["duration_s"] == round((finished - started).total_seconds(), 3)
        assert without_envelope(document) == {
            "total_orphans": 3,
            "links": [
                {
                    "model": "hr.Badge",
                    "field": "user",
                    "database": "employee",
                    "target": "auth.User",
                    "target_database": "default",
                    "checked": 0,
                    "orphans": 0,
                    "pending": 0,
                    "sample": [],
                },
                {
                    "model": "hr.Employee",
                    "field": "user",
                    "database": "employee",
                    "target": "auth.User",
                    "target_database": "default",
                    "checked": 8,
                    "orphans": 3,
                    "pending": 0,
                    "sample": [900001, 900002],
                },
            ],
            "not_checked": [],
            "pending_propagations": [],
            "captured_deletions": [],
            "truncations": [],
            "error": None,
        }

    def test_every_selected_link_appears_and_clean_exits_zero(self):
        result, document = verify("hr")
        assert result.exit_code == 0
        assert [f"{link['model']}.{link['field']}" for link in document["links"]] == [
            "hr.Badge.user",
            "hr.Employee.user",
            "hr.Order.big",
            "hr.Order.buyer",
            "hr.Order.code",
            "hr.Order.slug_target",
            "hr.Order.uuid_target",
            "hr.Visit.site",
        ]

    def test_character_uuid_and_to_field_keys(self):
        missing = uuid.UUID("12345678-1234-5678-1234-567812345678")
        kept = UUIDTarget.objects.create(name="u")
        CodeTarget.objects.create(code="C-1", name="c")
        Order.objects.create(uuid_target_id=missing, code_id="C-404", slug_target_id="gone")
        Order.objects.create(uuid_target=kept, code_id="C-1")

        _, document = verify("hr.Order")

        by_field = {link["field"]: link for link in document["links"]}
        assert by_field["uuid_target"]["sample"] == [str(missing)]
        assert by_field["code"]["sample"] == ["C-404"]
        assert by_field["slug_target"]["sample"] == ["gone"]
        assert document["total_orphans"] == 3

    def test_text_output(self):
        employees_with_orphans(2, [900001])
        result = run_command("verify_links", "hr.Employee")
        assert result.exit_code == 1
        assert "hr.Employee.user -> auth.User  (employee -> default)" in result.stdout
        assert "sample: 900001" in result.stdout
        assert result.stdout.strip().endswith(
            "1 link(s) checked, 3 reference(s), 1 orphan(s) in 1 link(s)."
        )
        assert run_command("verify_links", "hr.Employee", verbosity=0).stdout == ""

    def test_sample_size(self):
        employees_with_orphans(0, [900001, 900002, 900003])
        _, document = verify("hr.Employee", sample=2)
        assert document["links"][0]["sample"] == [900001, 900002]


class TestUsageErrors:
    @pytest.mark.parametrize(
        ("args", "options", "message"),
        [
            (["nope"], {}, "'nope' names no cross-database link"),
            (["hr.Employee.nope"], {}, "'hr.Employee.nope' names no cross-database link"),
            ([], {"database": "archive"}, "Unknown database 'archive'"),
            ([], {"dry_run": True}, "--dry-run only makes sense with --fix"),
            (["hr.Employee"], {"fix": "set-null"}, "cannot repair non-nullable links"),
        ],
    )
    def test_exit_status_2(self, args, options, message):
        result = run_command("verify_links", *args, **options)
        assert result.exit_code == 2
        assert message in result.stderr

    def test_bad_partition(self):
        with pytest.raises(Exception, match="K must be 0 to N-1"):
            Partition.parse("4/4")

    @pytest.mark.parametrize(
        ("option", "value"),
        [
            *(("--batch-size", v) for v in ("0", "-5", "1000001", "9" * 30, "abc", "1e3", "")),
            *(("--sample", v) for v in ("-1", "10001", "9" * 30, "ten")),
            *(("--max-fix", v) for v in ("-1", "9" * 30, "many", "2.5")),
            *(
                ("--partition", v)
                for v in (
                    "99999999999999999999/99999999999999999999999",
                    "0/0",
                    "4/4",
                    "-1/4",
                    "a/b",
                    "1",
                    "0/10001",
                    "1/2/3",
                )
            ),
            ("--format", "xml"),
            ("--fix", "drop"),
        ],
    )
    def test_every_bad_value_is_one_line_naming_it_and_nothing_is_read(self, option, value):
        employees_with_orphans(0, [900001])
        with ExitStack() as stack:
            captured = [
                stack.enter_context(CaptureQueriesContext(connections[a])) for a in connections
            ]
            as_json = [] if option == "--format" else ["--format=json"]
            result = run_command("verify_links", f"{option}={value}", *as_json)
        assert result.exit_code == 2
        assert result.stderr.count("\n") == 0 and option in result.stderr
        assert repr(value) in result.stderr or value in result.stderr
        assert [q for c in captured for q in c.captured_queries] == []
        if option != "--format":
            error = json.loads(result.stdout)["error"]
            assert (error["option"], error["value"]) == (option, value)
        assert Employee.objects.count() == 1


class TestScan:
    def count_queries(self, verifier: Verifier):
        with ExitStack() as stack:
            captured = {
                alias: stack.enter_context(CaptureQueriesContext(connections[alias]))
                for alias in connections
            }
            result = verifier.run()
        return result, {
            alias: [q["sql"] for q in c.captured_queries] for alias, c in captured.items()
        }

    def test_dense_pages_probe_by_range(self):
        employees_with_orphans(30, [])
        [link] = select_links(["hr.Employee.user"])
        result, queries = self.count_queries(Verifier(link, batch_size=10))
        assert result.checked == 30
        # 3 pages, each reading one row more to know whether its last key goes on.
        assert len(queries["employee"]) == 3
        probes = [sql for sql in queries["default"] if "auth_user" in sql]
        assert len(probes) == 3
        assert all(" IN (" not in sql for sql in probes)

    def test_sparse_pages_probe_by_in(self):
        employees_with_orphans(0, [10, 5000, 90000])
        [link] = select_links(["hr.Employee.user"])
        result, queries = self.count_queries(Verifier(link, batch_size=10))
        probes = [sql for sql in queries["default"] if "auth_user" in sql]
        # One probe and one re-check of the missing keys per page, never one per key.
        assert len(probes) == 2
        # The keys as one parameter: an array on PostgreSQL, a JSON array on SQLite.
        expected = {"postgresql": "= ANY(", "sqlite": "json_each("}
        assert all(expected[connections["default"].vendor] in sql for sql in probes)
        assert result.orphans == 3

    @override_settings(CROSSDB_PREFETCH_BATCH_SIZE=2)
    def test_backends_without_a_list_parameter_get_chunked_in_lists(self, monkeypatch):
        monkeypatch.setattr(engine, "keys_lookup", lambda alias: None)
        employees_with_orphans(0, [10, 5000, 90000])
        [link] = select_links(["hr.Employee.user"])
        result, queries = self.count_queries(Verifier(link, batch_size=10))
        probes = [sql for sql in queries["default"] if "auth_user" in sql]
        # Probe and re-check, each cut into IN lists of at most 2 keys.
        assert len(probes) == 4
        assert all(" IN (" in sql and "json_each" not in sql for sql in probes)
        assert result.orphans == 3 and result.sample == [10, 5000, 90000]

    def test_pages_are_read_ahead_between_two_servers_only(self):
        employees_with_orphans(30, [900001])
        [link] = select_links(["hr.Employee.user"])
        verifier = Verifier(link, batch_size=10)
        threads = []

        def record(execute, sql, params, many, context):
            threads.append(threading.current_thread().name)
            return execute(sql, params, many, context)

        with connections[verifier.source_db].execute_wrapper(record):
            assert verifier.run().orphans == 1
        databases = (verifier.source_db, verifier.target_db)
        servers = "sqlite" not in {connections[alias].vendor for alias in databases}
        assert verifier.reads_ahead() is servers
        # Every page read (4 of them) ran in the worker thread, or all in this one.
        assert len(threads) == 4
        expected = "crossdb-verify" if servers else threading.current_thread().name
        assert all(name.startswith(expected) for name in threads)

    def test_stopping_early_leaves_the_source_connection_usable(self):
        employees_with_orphans(30, [])
        [link] = select_links(["hr.Employee.user"])
        pages = Verifier(link, batch_size=10).pages()
        assert sum(next(pages).values()) == 10
        pages.close()  # a read of the next page may be in flight
        assert Employee.objects.count() == 30

    def test_missing_keys_are_rechecked_in_bounded_batches(self, monkeypatch):
        monkeypatch.setattr(engine, "RECHECK_BATCH_SIZE", 2)
        keys = [900001, 900002, 900003, 900004, 900005]
        employees_with_orphans(0, keys)
        [link] = select_links(["hr.Employee.user"])
        result, queries = self.count_queries(Verifier(link, batch_size=1))
        probes = [sql for sql in queries["default"] if "auth_user" in sql]
        # One probe per page of one key; re-checks after pages 2 and 4, and at the end.
        assert len(probes) == 5 + 3
        assert (result.orphans, result.sample) == (5, keys)

    def test_a_bounded_run_reads_no_further_than_its_bound(self):
        employees_with_orphans(20, [])
        [link] = select_links(["hr.Employee.user"])
        result, queries = self.count_queries(Verifier(link, max_rows=5))
        assert (result.checked, result.complete) == (5, False)
        # One page of 5 rows, plus the row that tells whether its last key goes on.
        (page,) = [sql for sql in queries["employee"] if Employee._meta.db_table in sql]
        assert page.rstrip().endswith("LIMIT 6")

    @pytest.mark.parametrize("batch_size", [1, 2, 3, 4, 7, 50])
    def test_keys_with_many_rows_across_page_ends(self, batch_size):
        """Rows of one key that straddle a page end, or fill whole pages, count once each."""
        users = employees_with_orphans(3, [])  # one employee each
        Employee.objects.bulk_create(
            [Employee(user_id=users[1].pk, name="again") for _ in range(4)]
            + [Employee(user_id=900001, name="gone") for _ in range(5)]
            + [Employee(user_id=900002, name="gone")]
            + [Employee(user_id=900003, name="gone") for _ in range(2)]
        )
        [link] = select_links(["hr.Employee.user"])
        pages = list(Verifier(link, batch_size=batch_size).pages())
        # Pages of rows in primary key order: a key's rows may be counted on several pages.
        assert all(sum(page.values()) <= batch_size for page in pages)
        assert sum(map(Counter, pages), Counter()) == Counter(
            Employee.objects.values_list("user_id", flat=True)
        )
        result = Verifier(link, batch_size=batch_size, sample=5).run()
        assert (result.checked, result.orphans) == (15, 8)
        assert result.sample == [900001, 900002, 900003]

    def test_a_target_created_during_the_scan_is_not_reported(self, monkeypatch):
        employees_with_orphans(0, [900001])
        [link] = select_links(["hr.Employee.user"])
        verifier = Verifier(link)
        first_probe = verifier.probe

        def probe_then_create(keys, bounds=None):
            found = first_probe(keys, bounds)
            if not User.objects.filter(pk=900001).exists():
                User.objects.create(pk=900001, username="late")
            return found

        monkeypatch.setattr(verifier, "probe", probe_then_create)
        assert verifier.run().orphans == 0

    def test_a_target_created_before_the_repair_keeps_its_references(self):
        employees_with_orphans(0, [900001])
        [link] = select_links(["hr.Employee.user"])
        verifier = Verifier(link, collect_limit=10)
        result = verifier.run()
        assert result.repairable_keys == [900001]
        User.objects.create(pk=900001, username="late")

        assert verifier.repair(result.repairable_keys, "delete") == 0
        assert Employee.objects.filter(user_id=900001).exists()

    def test_a_read_only_run_writes_nothing(self):
        employees_with_orphans(5, [900001])
        with ExitStack() as stack:
            captured = [
                stack.enter_context(CaptureQueriesContext(connections[a])) for a in connections
            ]
            run_command("verify_links")
        statements = [q["sql"].split()[0].upper() for c in captured for q in c.captured_queries]
        assert statements and set(statements) <= {"SELECT"}


class TestPaging:
    """Keys the database compares exactly are paged by key; text by primary key."""

    def test_which_paging_each_link_gets(self):
        paging = {
            f"{link.model._meta.label}.{link.name}": Verifier(link).pages_by_key
            for link in select_links(["hr"])
        }
        assert paging == {
            "hr.Badge.user": True,
            "hr.Employee.user": True,
            "hr.Order.big": True,
            "hr.Order.buyer": True,
            # PostgreSQL's uuid, MariaDB's UUID (10.7+), SQLite's char(32) under BINARY.
            "hr.Order.uuid_target": True,
            "hr.Order.code": False,
            "hr.Order.slug_target": False,
            "hr.Visit.site": False,
        }

    def test_pages_follow_that_column(self):
        """Rows are created with their keys in descending order; two rows a page."""
        Employee.objects.bulk_create(Employee(user_id=k, name="e") for k in (30, 20, 10))
        Order.objects.bulk_create(Order(code_id=k) for k in ("C", "B", "A"))
        [by_key] = select_links(["hr.Employee.user"])
        [by_pk] = select_links(["hr.Order.code"])
        assert [dict(page) for page in Verifier(by_key, batch_size=2).pages()] == [
            {10: 1, 20: 1},
            {30: 1},
        ]
        assert [dict(page) for page in Verifier(by_pk, batch_size=2).pages()] == [
            {"C": 1, "B": 1},
            {"A": 1},
        ]

    @pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 8, 50])
    def test_uuid_keys_across_page_ends(self, batch_size):
        """MariaDB sorts UUIDs unlike Python (time fields first): paging relies on equality."""
        kept = [UUIDTarget.objects.create(name=f"u{i}").pk for i in range(3)]
        gone = [uuid.uuid1(), uuid.uuid4(), uuid.UUID(int=1), uuid.UUID(int=2**128 - 1)]
        keys = [kept[0]] * 3 + [gone[0]] * 4 + [kept[1], gone[1], kept[2]] + gone[2:] * 2
        Order.objects.bulk_create(Order(uuid_target_id=key) for key in keys)
        [link] = select_links(["hr.Order.uuid_target"])

        pages = list(Verifier(link, batch_size=batch_size).pages())
        result = Verifier(link, batch_size=batch_size, sample=10).run()

        assert all(sum(page.values()) <= batch_size for page in pages)
        assert sum(map(Counter, pages), Counter()) == Counter(keys)
        assert (result.checked, result.orphans) == (len(keys), 9)
        assert sorted(result.sample) == sorted(gone)


class TestPartitions:
    @pytest.mark.parametrize("parts", [2, 4])
    def test_integer_keys_split_into_even_key_ranges(self, parts):
        employees_with_orphans(12, [900001, 900001, 900001, 900002])
        [link] = select_links(["hr.Employee.user"])
        found = [
            Verifier(link, partition=Partition(index, parts), sample=10).run()
            for index in range(parts)
        ]
        assert [r.checked for r in found] == [16 // parts] * parts
        # A key's rows are all in one part: no sample key appears twice.
        samples = [key for r in found for key in r.sample]
        assert sorted(samples) == [900001, 900002]
        assert sum(r.orphans for r in found) == 4

    @pytest.mark.parametrize("parts", [1, 3, 4])
    def test_parts_are_disjoint_and_merge_into_the_whole(self, parts):
        employees_with_orphans(20, [900001, 900002, 900003, 900004])
        Order.objects.bulk_create(Order(code_id=f"C-{i:03d}") for i in range(11))
        whole = verify("hr.Employee", "hr.Order.code", sample=100)[1]
        merged = {}
        for index in range(parts):
            partition = Partition(index, parts)
            part = verify("hr.Employee", "hr.Order.code", sample=100, partition=partition)[1]
            for link in part["links"]:
                into = merged.setdefault(link["field"], {"checked": 0, "orphans": 0, "sample": []})
                into["checked"] += link["checked"]
                into["orphans"] += link["orphans"]
                into["sample"] += link["sample"]
        for link in whole["links"]:
            assert merged[link["field"]]["checked"] == link["checked"]
            assert merged[link["field"]]["orphans"] == link["orphans"]
            assert sorted(merged[link["field"]]["sample"]) == sorted(link["sample"])


class TestRepair:
    def test_fix_delete_runs_the_source_databases_cascades(self):
        account = Account.objects.create(name="kept")
        Membership.objects.create(account=account)
        orphan = Membership.objects.create(account_id=900001)
        MembershipNote.objects.create(membership=orphan)

        result = run_command(
            "verify_links", "integrity.Membership", fix="delete", interactive=False
        )

        assert result.exit_code == 0, result.stdout + result.stderr
        assert "Repaired: 1 row(s) deleted (with their cascades)." in result.stdout
        assert list(Membership.objects.values_list("account_id", flat=True)) == [account.pk]
        assert not MembershipNote.objects.exists()

    def test_fix_set_null(self):
        Order.objects.create(big_id=900001)
        result = run_command("verify_links", "hr.Order.big", fix="set-null", interactive=False)
        assert result.exit_code == 0
        assert Order.objects.get().big_id is None

    def test_max_fix_refuses_and_changes_nothing(self):
        employees_with_orphans(0, [900001, 900002, 900003])
        result = run_command(
            "verify_links", "hr.Employee", fix="delete", interactive=False, max_fix=2
        )
        assert result.exit_code == 2
        assert "3 orphaned rows would be deleted" in result.stderr
        assert Employee.objects.count() == 3

    def test_dry_run_changes_nothing(self):
        employees_with_orphans(0, [900001])
        result = run_command("verify_links", "hr.Employee", fix="delete", dry_run=True)
        assert result.exit_code == 1
        assert "Dry run: 1 orphaned row(s) would be deleted" in result.stdout
        assert Employee.objects.count() == 1

    def test_confirmation_declined(self, monkeypatch):
        employees_with_orphans(0, [900001])
        monkeypatch.setattr("builtins.input", lambda: "no")
        result = run_command("verify_links", "hr.Employee", fix="delete")
        assert result.exit_code == 1
        assert "Repair cancelled; nothing was changed." in result.stdout
        assert Employee.objects.count() == 1


def test_pending_propagations_are_reported_apart_from_orphans(monkeypatch):
    monkeypatch.setattr("crossdb.propagation.after_commit", lambda *args, **kwargs: None)
    account = Account.objects.create(name="acme")
    Membership.objects.create(account=account)
    account.delete()

    result, document = verify("integrity.Membership")

    assert result.exit_code == 0
    assert document["total_orphans"] == 0
    assert document["links"][0]["pending"] == 1
    [pending] = document["pending_propagations"]
    assert {k: pending[k] for k in ("database", "link", "target", "rows", "keys")} == {
        "database": "default",
        "link": "integrity.Membership.account",
        "target": "integrity.Account",
        "rows": 1,
        "keys": 1,
    }


class TestDatabaseCheck:
    def test_warns_per_link_with_orphans(self):
        employees_with_orphans(3, [900001])
        [link] = select_links(["hr.Employee.user"])
        messages = checks.run_checks(databases=["employee"], tags=[checks.Tags.database])
        assert [m for m in messages if m.id == "crossdb.W003"] == [
            checks.Warning(
                "1 reference(s) among 4 references point to auth.User rows missing from "
                "database 'default'; e.g. 900001.",
                hint="Run `manage.py verify_links hr.Employee.user` for the full report, and "
                "add --fix set-null or --fix delete to repair.",
                obj=link,
                id="crossdb.W003",
            )
        ]

    @override_settings(CROSSDB_CHECK_MAX_ROWS=2)
    def test_says_when_it_stopped_early(self):
        employees_with_orphans(0, [900001, 900002, 900003])
        messages = checks.run_checks(databases=["employee"], tags=[checks.Tags.database])
        [warning] = [m for m in messages if m.id == "crossdb.W003"]
        assert "the check stops at CROSSDB_CHECK_MAX_ROWS=2" in warning.msg

    def test_plain_check_reads_no_data(self):
        employees_with_orphans(1, [900001])
        # What `manage.py check` runs: no tags, no --database.
        with assert_num_queries_per_db({}):
            messages = checks.run_checks()
        assert [m for m in messages if m.id == "crossdb.W003"] == []


class TestSubprocess:
    """Messages, exit statuses and JSON documents as a scheduler sees them: manage.py in its own
    process, on the test databases (``CROSSDB_TEST_USE_TEST_DATABASES``)."""

    @staticmethod
    def run(*args: str, command: str = "verify_links", **env: str):
        root = Path(__file__).resolve().parent.parent
        environ = {
            **os.environ,
            "CROSSDB_TEST_USE_TEST_DATABASES": "1",
            "PYTHONPATH": str(root),
            **env,
        }
        # The test models' own check warnings (crossdb.W001) would come first on stderr.
        skip = ["--skip-checks"] if command == "verify_links" else []
        return subprocess.run(
            [sys.executable, "-m", "django", command, "--settings=tests.settings", *skip, *args],
            cwd=root,
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def test_exit_statuses(self):
        employees_with_orphans(3, [])
        clean = self.run("hr.Employee")
        assert (clean.returncode, clean.stdout.strip().splitlines()[-1]) == (
            0,
            "1 link(s) checked, 3 reference(s), 0 orphan(s) in 0 link(s).",
        ), clean.stderr

        Employee.objects.create(user_id=900001, name="orphan")
        found = self.run("hr.Employee", "--format", "json")
        assert found.returncode == 1, found.stderr
        assert json.loads(found.stdout)["total_orphans"] == 1

        unknown = self.run("hr.Nope", "--format", "json")
        assert unknown.returncode == 2
        [line] = unknown.stderr.splitlines()
        assert line.startswith(
            "CommandError: 'hr.Nope' names no cross-database link. Use app_label, "
            "app_label.Model or app_label.Model.field; links: hr.Badge.user, "
        )
        assert json.loads(unknown.stdout)["error"]["label"] == "hr.Nope"

        bad_option = self.run("--partition", "9/4")
        assert bad_option.returncode == 2
        assert "K must be 0 to N-1" in bad_option.stderr

    @pytest.mark.parametrize(
        ("option", "value", "message"),
        [
            (
                "--partition",
                "99999999999999999999/99999999999999999999999",
                "--partition 99999999999999999999/99999999999999999999999: N must be at most "
                "10,000.",
            ),
            ("--batch-size", "0", "--batch-size '0': must be a whole number from 1 to 1,000,000."),
            ("--sample", "-3", "--sample '-3': must be a whole number from 0 to 10,000."),
            (
                "--max-fix",
                "lots",
                "--max-fix 'lots': must be a whole number from 0 to 1,000,000,000.",
            ),
        ],
    )
    def test_a_bad_value_is_one_line_and_a_json_error(self, option, value, message):
        employees_with_orphans(0, [900001])
        done = self.run("hr.Employee", option, value, "--format", "json", "--fix", "delete")
        assert (done.returncode, done.stderr) == (2, f"CommandError: {message}\n")
        document = json.loads(done.stdout)
        assert document["error"] == {"message": message, "option": option, "value": value}
        assert (document["links"], document["schema_version"]) == ([], 1)
        assert Employee.objects.count() == 1

    def test_json_is_alone_on_stdout_in_every_mode(self):
        employees_with_orphans(2, [900001, 900002])
        dry = self.run("hr.Employee", "--format", "json", "--fix", "delete", "--dry-run", "-v", "2")
        assert dry.returncode == 1, dry.stderr
        assert json.loads(dry.stdout)["total_orphans"] == 2
        assert "Dry run: 2 orphaned row(s) would be deleted (with their cascades)." in dry.stderr

        fixed = self.run("hr.Employee", "--format", "json", "--fix", "delete", "--noinput")
        assert fixed.returncode == 0, fixed.stderr
        assert json.loads(fixed.stdout)["total_orphans"] == 0
        assert "Repaired: 2 row(s) deleted (with their cascades)." in fixed.stderr
        assert Employee.objects.count() == 2

    def test_a_broken_sqlite_target_exits_2_without_a_clean_result(self, tmp_path):
        employees_with_orphans(3, [])
        broken = str(tmp_path / "missing" / "db.sqlite3")
        result = self.run("hr.Employee", "--format", "json", CROSSDB_TEST_BROKEN_TARGET=broken)
        assert result.returncode == 2
        [line] = result.stderr.splitlines()
        assert "database 'default': unable to open database file" in line
        assert line.endswith("Not checked: hr.Employee.user.")
        document = json.loads(result.stdout)
        assert document["links"] == [] and document["total_orphans"] == 0
        assert document["error"]["alias"] == "default"

    @pytest.mark.parametrize("closed", ["default", "default:mysql"])
    def test_a_closed_port_leaves_the_other_links_checked(self, closed):
        """``default`` on a port nothing listens on: the hr links into it cannot be checked."""
        Visit.objects.create(site_id="gone")
        done = self.run("hr", "--format", "json", CROSSDB_TEST_CLOSED_PORT=closed)

        assert done.returncode == 2, done.stderr
        [line] = done.stderr.splitlines()
        assert line.startswith("CommandError: Could not check every link (database 'default': ")
        assert line.endswith(
            "Not checked: hr.Badge.user, hr.Employee.user, hr.Order.big, hr.Order.buyer, "
            "hr.Order.code, hr.Order.slug_target, hr.Order.uuid_target."
        )
        document = json.loads(done.stdout)
        assert [(link["model"], link["field"], link["orphans"]) for link in document["links"]] == [
            ("hr.Visit", "site", 1)
        ]
        assert {link["error"]["alias"] for link in document["not_checked"]} == {"default"}
        assert document["not_checked"][0]["error"]["message"] == "database 'default' is unreachable"
        assert document["error"]["alias"] == "default"
        assert document["databases"] == ["asset", "default", "employee"]

        text = self.run("hr", CROSSDB_TEST_CLOSED_PORT=closed)
        assert text.returncode == 2 and len(text.stderr.splitlines()) == 1
        assert "  not checked: database 'default' is unreachable" in text.stdout
        assert text.stdout.strip().endswith(
            "1 link(s) checked, 1 reference(s), 1 orphan(s) in 1 link(s)."
        )

    def test_a_repair_whose_cascade_database_is_closed_changes_nothing(self):
        """Deleting an orphaned Membership must ask ``asset`` (Seal's RESTRICT): closed there."""
        Membership.objects.create(account_id=900001)
        done = self.run(
            "integrity.Membership",
            "--fix",
            "delete",
            "--noinput",
            "--format",
            "json",
            CROSSDB_TEST_CLOSED_PORT="asset",
        )
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.splitlines()
        assert line.startswith("CommandError: --fix delete would reach a database that is ")
        assert "database 'asset': " in line and line.endswith("Nothing was changed.")
        document = json.loads(done.stdout)
        assert document["links"][0]["orphans"] == 1
        assert {k: document["error"][k] for k in ("option", "value", "alias")} == {
            "option": "--fix",
            "value": "delete",
            "alias": "asset",
        }
        assert Membership.objects.filter(account_id=900001).exists()

    def test_check_database_names_a_closed_alias(self):
        employees_with_orphans(0, [900001])
        done = self.run(
            "--database", "employee", command="check", CROSSDB_TEST_CLOSED_PORT="default"
        )
        assert "Traceback" not in done.stderr, done.stderr
        output = done.stdout + done.stderr
        assert "(crossdb.W005) Database 'default' is unreachable (" in output
        assert "crossdb could not check hr.Badge.user, hr.Employee.user" in output


class TestProgress:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    def run(self, stderr, *args: str) -> str:
        call_command("verify_links", "hr.Employee", *args, stdout=io.StringIO(), stderr=stderr)
        return str(stderr.getvalue())

    def test_tqdm_on_a_terminal(self):
        employees_with_orphans(5, [])
        shown = self.run(self.Terminal())
        # tqdm's own bar: "hr.Employee.user: 100%|##########| 5.00/5.00 [00:00<00:00, 818 rows/s]"
        assert re.search(r"hr\.Employee\.user: +\d+%\|.*\| 5(\.00)?/[\d.]+ .* rows/s\]", shown)

    def test_plain_line_without_tqdm(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError
        employees_with_orphans(5, [])
        shown = self.run(self.Terminal())
        assert re.fullmatch(
            r"\rhr\.Employee\.user: 5( of ~[\d,]+ rows \(\d+%\), [\d,]+ rows/s, ETA \d+:\d\d"
            r"| rows, [\d,]+ rows/s)\n",
            shown,
        ), shown

    def test_silent_unless_a_terminal_or_asked(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "tqdm", None)
        employees_with_orphans(5, [])
        assert self.run(io.StringIO()) == ""
        assert self.run(io.StringIO(), "--progress").startswith("hr.Employee.user: 5 ")
        assert self.run(self.Terminal(), "-v", "0") == ""

    def test_the_total_is_an_estimate_never_a_count(self):
        employees_with_orphans(5, [])
        [link] = select_links(["hr.Employee.user"])
        verifier = Verifier(link)
        with CaptureQueriesContext(connections[verifier.source_db]) as captured:
            total = verifier.estimated_total()
        assert total is None or total >= 0
        assert captured.captured_queries
        assert not any("COUNT(" in q["sql"].upper() for q in captured.captured_queries)
