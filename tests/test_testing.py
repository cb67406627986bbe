"""crossdb.testing, the pytest plugin's fixture and crossdb.factories."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import factory
import pytest
from django.db import connections
from django.test import TestCase
from factory.django import DjangoModelFactory

from crossdb import LazyLoadForbidden, forbid_lazy_loads
from crossdb.factories import CrossDBModelFactory, CrossDBSubFactory
from crossdb.testing import (
    CaptureQueriesPerDatabase,
    assert_num_queries_per_db,
    capture_on_commit_callbacks,
)
from tests.factories import AssetFactory, EmployeeFactory, UserFactory
from tests.helpers import SHADOW_ALIASES
from tests.hr.models import Employee
from tests.inventory.models import Asset
from tests.people.models import AutoTarget

REPO = Path(__file__).resolve().parent.parent


def run_python(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run this interpreter in a subprocess that has no DJANGO_SETTINGS_MODULE."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def select_one(alias: str) -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute(f"SELECT 1 -- on {alias}")


@pytest.mark.django_db(databases="__all__")
class TestAssertNumQueriesPerDb:
    def test_counts_every_alias(self):
        with assert_num_queries_per_db({"default": 2, "employee": 1}):
            select_one("default")
            select_one("employee")
            select_one("default")

    def test_an_alias_not_named_must_see_no_query(self):
        with (
            pytest.raises(AssertionError) as raised,
            assert_num_queries_per_db({"default": 1}),
        ):
            select_one("default")
            select_one("asset")

        assert str(raised.value).splitlines() == [
            "queries per database: expected {'default': 1, 'employee': 0, 'asset': 0}, "
            "got {'default': 1, 'employee': 0, 'asset': 1}",
            "  [default] SELECT 1 -- on default",
            "  [asset] SELECT 1 -- on asset",
        ]

    def test_too_few_queries_fail(self):
        with (
            pytest.raises(AssertionError, match=r"got \{'default': 0, "),
            assert_num_queries_per_db({"default": 1}),
        ):
            pass

    def test_unknown_alias(self):
        with (
            pytest.raises(ValueError) as raised,
            assert_num_queries_per_db({"default": 1, "users": 1}),
        ):
            pytest.fail("the block must not run")
        assert str(raised.value) == (
            "Unknown database alias(es) 'users'; DATABASES has: 'default', 'employee', 'asset'."
        )

    def test_yields_the_captured_queries(self):
        with assert_num_queries_per_db({"employee": 1}) as captured:
            select_one("employee")
        assert captured["employee"][0]["sql"] == "SELECT 1 -- on employee"

    def test_prefetch_through_the_field(self):
        users = {e.user.username for e in EmployeeFactory.create_batch(3)}
        with assert_num_queries_per_db({"default": 1, "employee": 1}):
            employees = list(Employee.objects.prefetch_related("user"))
            assert {e.user.username for e in employees} == users

    def test_is_re_exported_for_the_test_suite(self):
        from tests import helpers

        assert helpers.assert_num_queries_per_db is assert_num_queries_per_db


@pytest.mark.django_db(databases="__all__")
class TestCaptureQueriesPerDatabase:
    def test_mapping_of_alias_to_queries(self):
        with CaptureQueriesPerDatabase() as captured:
            select_one("asset")
            select_one("asset")

        assert list(captured) == ["default", "employee", "asset"]
        assert captured.counts == {"default": 0, "employee": 0, "asset": 2}
        assert [q["sql"] for q in captured["asset"]] == ["SELECT 1 -- on asset"] * 2
        assert captured.report() == "  [asset] SELECT 1 -- on asset\n  [asset] SELECT 1 -- on asset"

    def test_using_limits_the_aliases(self):
        with CaptureQueriesPerDatabase(using=["employee"]) as captured:
            select_one("employee")
            select_one("default")
        assert dict(captured.counts) == {"employee": 1}

    def test_unknown_alias(self):
        with pytest.raises(ValueError, match="Unknown database alias"):
            CaptureQueriesPerDatabase(using=["nope"])

    def test_queries_after_the_block_are_not_captured(self):
        with CaptureQueriesPerDatabase() as captured:
            select_one("default")
        select_one("default")
        assert captured.counts["default"] == 1


@pytest.mark.django_db(databases=["default"])
def test_aliases_outside_the_tests_databases_count_zero():
    for alias in ("employee", "asset"):
        connections[alias].close()  # a connection left open would not be refused

    with assert_num_queries_per_db({"default": 1}) as captured:
        select_one("default")

    assert captured.counts == {"default": 1, "employee": 0, "asset": 0}


class TestPytestPlugin:
    @pytest.mark.django_db(databases="__all__")
    def test_fixture(self, django_assert_num_queries_per_db):
        assert django_assert_num_queries_per_db is assert_num_queries_per_db
        with django_assert_num_queries_per_db({"asset": 1}):
            select_one("asset")

    def test_registered_through_the_entry_point(self, pytestconfig):
        plugin = pytestconfig.pluginmanager.get_plugin("crossdb")
        assert plugin is sys.modules["crossdb.pytest_plugin"]

    def test_works_without_pytest_django_and_imports_no_django(self, tmp_path):
        (tmp_path / "pytest.ini").write_text("[pytest]\n")
        (tmp_path / "test_plain.py").write_text(
            textwrap.dedent(
                """
                import sys

                import pytest


                def test_plugin_import_is_free_of_django():
                    assert "crossdb.pytest_plugin" in sys.modules
                    assert "crossdb.testing" not in sys.modules
                    assert "django.db" not in sys.modules


                def test_fixture_on_hand_configured_django(django_assert_num_queries_per_db):
                    import django
                    from django.conf import settings
                    from django.db import connections

                    memory = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
                    settings.configure(DATABASES={"default": memory, "other": memory})
                    django.setup()
                    with django_assert_num_queries_per_db({"other": 1}):
                        connections["other"].cursor().execute("SELECT 1")
                    with pytest.raises(AssertionError, match=r"\\[default\\] SELECT 2"):
                        with django_assert_num_queries_per_db({}):
                            connections["default"].cursor().execute("SELECT 2")
                """
            )
        )
        result = run_python(
            "-m", "pytest", "-q", "-p", "no:django", "-p", "no:cacheprovider", cwd=tmp_path
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "2 passed" in result.stdout


def test_importing_crossdb_does_not_import_factory_boy_or_pytest():
    result = run_python(
        "-c",
        textwrap.dedent(
            """
        import sys

        import django
        from django.conf import settings

        settings.configure(INSTALLED_APPS=["django.contrib.contenttypes", "crossdb"])
        django.setup()
        import crossdb

        for name in crossdb.__all__:
            getattr(crossdb, name)
        unwanted = sorted({"factory", "pytest", "crossdb.testing"} & set(sys.modules))
        assert not unwanted, unwanted
        """
        ),
    )
    assert result.returncode == 0, result.stderr


def located(obj) -> list[str]:
    """The aliases whose table holds ``obj``'s row."""
    model = type(obj)
    return [
        alias
        for alias in connections
        if model._meta.db_table in connections[alias].introspection.table_names()
        and model._base_manager.using(alias).filter(pk=obj.pk).exists()
    ]


@pytest.mark.django_db(databases="__all__")
class TestFactories:
    def test_each_row_on_its_models_database(self):
        asset = AssetFactory()

        assert located(asset) == ["asset"]
        assert located(asset.owner) == ["employee"]
        assert located(asset.owner.user) == ["default"]
        assert Asset.objects.get(pk=asset.pk).owner_id == asset.owner.pk
        assert Employee.objects.get(pk=asset.owner.pk).user_id == asset.owner.user.pk

    def test_explicit_meta_database_wins(self):
        class ShadowTargetFactory(CrossDBModelFactory):
            class Meta:
                model = AutoTarget
                database = SHADOW_ALIASES[0]

            name = "shadow"

        assert located(ShadowTargetFactory()) == [SHADOW_ALIASES[0]]

    def test_build_creates_the_target_and_sets_the_key(self):
        employee = EmployeeFactory.build()

        assert employee.pk is None
        assert employee._state.adding
        assert located(employee.user) == ["default"]
        assert employee.user_id == employee.user.pk

    def test_a_plain_sub_factory_builds_an_unsaved_target_as_django_does(self):
        class PlainSubEmployeeFactory(EmployeeFactory):
            user = factory.SubFactory(UserFactory)

        employee = PlainSubEmployeeFactory.build()

        assert (employee.user.pk, employee.user_id) == (None, None)
        with pytest.raises(ValueError, match="unsaved related object 'user'"):
            employee.save()

    def test_target_factory_writing_to_the_wrong_database(self):
        class PlainEmployeeFactory(DjangoModelFactory):
            class Meta:
                model = Employee

        class PlainOwnerAssetFactory(AssetFactory):
            owner = CrossDBSubFactory(PlainEmployeeFactory)

        with pytest.raises(ValueError) as raised:
            PlainOwnerAssetFactory()

        assert str(raised.value) == (
            "PlainEmployeeFactory creates hr.Employee rows on database 'default', but the "
            "routers put them on 'employee'. Make PlainEmployeeFactory a "
            "crossdb.factories.CrossDBModelFactory, or set its Meta.database = 'employee'."
        )
        assert not Asset.objects.exists()

    def test_target_factory_with_the_right_meta_database(self):
        class PlainEmployeeFactory(DjangoModelFactory):
            class Meta:
                model = Employee
                database = "employee"

            user = CrossDBSubFactory(UserFactory)
            name = "plain"

        class PlainOwnerAssetFactory(AssetFactory):
            owner = CrossDBSubFactory(PlainEmployeeFactory)

        asset = PlainOwnerAssetFactory()
        assert located(asset.owner) == ["employee"]


# The examples of docs/testing.rst, included from here (literalinclude :pyobject:) so that
# every one of them runs.


@pytest.mark.django_db(databases="__all__")
def test_prefetch_costs_one_query_per_database():
    EmployeeFactory.create_batch(3)

    with assert_num_queries_per_db({"default": 1, "employee": 1}):
        employees = list(Employee.objects.prefetch_related("user"))
        names = [employee.user.username for employee in employees]

    assert len(names) == 3


@pytest.mark.django_db(databases="__all__")
def test_the_user_is_loaded_once(django_assert_num_queries_per_db):
    employee = EmployeeFactory()
    employee = Employee.objects.get(pk=employee.pk)

    with django_assert_num_queries_per_db({"default": 1}):
        assert employee.user.username
        assert employee.user.username


@pytest.mark.django_db(databases="__all__")
def test_reverse_accessor_reads_the_employees_database():
    user = UserFactory()
    EmployeeFactory.create_batch(2, user=user)

    with CaptureQueriesPerDatabase() as captured:
        assert len(user.employees.all()) == 2

    assert captured.counts == {"default": 0, "employee": 1, "asset": 0}
    assert "hr_employee" in captured["employee"][0]["sql"]


@pytest.mark.django_db(databases="__all__")
def test_no_lazy_loads_in_the_report():
    EmployeeFactory.create_batch(2)

    with forbid_lazy_loads():
        employees = Employee.objects.prefetch_related("user")
        assert all(employee.user.username for employee in employees)

        with pytest.raises(LazyLoadForbidden):
            str(Employee.objects.first().user)  # one query per employee: an N+1


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_deleting_a_user_deletes_their_employees():
    employee = EmployeeFactory()

    employee.user.delete()  # CASCADE reaches "employee" once the deletion has committed

    assert not Employee.objects.filter(pk=employee.pk).exists()


@pytest.mark.django_db(databases="__all__")
def test_deleting_a_user_inside_the_test_transaction(crossdb_capture_on_commit_callbacks):
    employee = EmployeeFactory()

    with crossdb_capture_on_commit_callbacks(execute=True):
        employee.user.delete()

    assert not Employee.objects.filter(pk=employee.pk).exists()


@pytest.mark.django_db(databases="__all__")
def test_one_databases_callbacks_are_not_enough(django_capture_on_commit_callbacks):
    employee = EmployeeFactory()

    with django_capture_on_commit_callbacks(using="default", execute=True) as callbacks:
        employee.user.delete()

    # The propagation now waits for the commit of "employee", which holds the test's
    # transaction open: it never comes inside the test.
    assert len(callbacks) == 1
    assert Employee.objects.filter(pk=employee.pk).exists()


class TestCaptureOnCommitCallbacks(TestCase):
    databases = {"default", "employee", "asset"}

    def test_runs_the_callbacks_of_every_database_in_turn(self):
        employee = EmployeeFactory()
        asset = AssetFactory(owner=employee)

        with capture_on_commit_callbacks(execute=True) as callbacks:
            employee.user.delete()  # default -> employee (CASCADE) -> asset (SET_NULL)

        assert not Employee.objects.filter(pk=employee.pk).exists()
        asset.refresh_from_db()
        assert asset.owner_id is None
        # default's commit, employee's (its cascade deleted the employee), employee's again.
        assert len(callbacks) >= 2

    def test_without_execute_it_only_collects(self):
        employee = EmployeeFactory()

        with capture_on_commit_callbacks() as callbacks:
            employee.user.delete()

        assert len(callbacks) == 1
        assert Employee.objects.filter(pk=employee.pk).exists()

    def test_unknown_alias(self):
        with (
            self.assertRaisesMessage(ValueError, "Unknown database alias(es) 'nope'"),
            capture_on_commit_callbacks(using=["nope"]),
        ):
            pass
