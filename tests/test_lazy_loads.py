"""CROSSDB_LAZY_LOADS: a project-wide N+1 guard, its pytest option and marker."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core import exceptions as django_exceptions
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from crossdb import LazyLoadForbidden, LazyLoadWarning, forbid_lazy_loads
from tests.hr.models import Badge, Employee

# Not for the whole module: the test run by a nested pytest must not set up databases.
DB = pytest.mark.django_db(databases="__all__")

REPO = Path(__file__).resolve().parent.parent
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
FORWARD = (
    "Lazy load of hr.Employee.user across databases (CROSSDB_LAZY_LOADS={mode!r}). Load it up "
    "front with .prefetch_related('user') or prefetch_cross_db(..., 'user')."
)


@pytest.fixture
def employee() -> Employee:
    user = User.objects.create(username="ada")
    Badge.objects.create(user=user, title="gold")
    created = Employee.objects.create(user=user, name="Ada")
    return Employee.objects.get(pk=created.pk)


def fresh_user() -> User:
    return User.objects.get(username="ada")


@DB
class TestSetting:
    def test_allow_is_the_default(self, employee):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert employee.user.username == "ada"
            assert fresh_user().badge.title == "gold"
            assert len(fresh_user().employees.all()) == 1

    @override_settings(CROSSDB_LAZY_LOADS="warn")
    def test_warn_names_the_model_field_and_lookup_at_the_callers_line(self, employee):
        with pytest.warns(LazyLoadWarning) as caught:
            assert employee.user.username == "ada"
        [warning] = caught
        assert str(warning.message) == FORWARD.format(mode="warn")
        assert warning.filename == __file__
        assert issubclass(LazyLoadWarning, RuntimeWarning)

    @override_settings(CROSSDB_LAZY_LOADS="warn")
    def test_warn_on_the_reverse_sides(self, employee):
        with pytest.warns(LazyLoadWarning, match=r"auth\.User\.badge .*'badge'") as one:
            fresh_user().badge  # noqa: B018
        with pytest.warns(LazyLoadWarning, match=r"auth\.User\.employees .*'employees'") as many:
            fresh_user().employees.all()
        assert [w.filename for w in [*one, *many]] == [__file__, __file__]

    @override_settings(CROSSDB_LAZY_LOADS="raise")
    def test_raise_on_every_lazy_load(self, employee):
        with pytest.raises(LazyLoadForbidden) as raised:
            employee.user  # noqa: B018
        assert str(raised.value) == FORWARD.format(mode="raise")
        with pytest.raises(LazyLoadForbidden, match=r"auth\.User\.badge"):
            fresh_user().badge  # noqa: B018
        with pytest.raises(LazyLoadForbidden, match=r"auth\.User\.employees"):
            fresh_user().employees.all()

    @override_settings(CROSSDB_LAZY_LOADS="raise")
    def test_loads_served_by_a_prefetch_pass(self, employee):
        [loaded] = Employee.objects.prefetch_related("user")
        assert loaded.user.username == "ada"
        [user] = User.objects.prefetch_related("employees", "badge")
        assert (len(user.employees.all()), user.badge.title) == (1, "gold")
        assert employee.user_id == user.pk  # the key is a column: no load
        assert user.employees.filter(name="Ada").count() == 1  # a query asked for

    def test_read_on_each_access(self, employee):
        with override_settings(CROSSDB_LAZY_LOADS="raise"), pytest.raises(LazyLoadForbidden):
            employee.user  # noqa: B018
        assert employee.user.username == "ada"

    @override_settings(CROSSDB_LAZY_LOADS="warn")
    def test_forbid_lazy_loads_wins(self, employee):
        with forbid_lazy_loads(), pytest.raises(LazyLoadForbidden, match="forbid_lazy_loads"):
            employee.user  # noqa: B018

    @override_settings(CROSSDB_LAZY_LOADS="never")
    def test_an_unknown_mode_is_refused(self, employee):
        with pytest.raises(ImproperlyConfigured, match="CROSSDB_LAZY_LOADS must be one of"):
            employee.user  # noqa: B018


@DB
@pytest.mark.skipif(not hasattr(django_exceptions, "FieldFetchBlocked"), reason="new in Django 6.1")
def test_the_error_is_djangos_field_fetch_blocked_too(employee):
    assert issubclass(LazyLoadForbidden, django_exceptions.FieldFetchBlocked)
    with (
        override_settings(CROSSDB_LAZY_LOADS="raise"),
        pytest.raises(django_exceptions.FieldFetchBlocked),
    ):
        employee.user  # noqa: B018


def test_a_runtime_error_on_every_django_version():
    assert issubclass(LazyLoadForbidden, RuntimeError)


class TestPytestPlugin:
    @DB
    @pytest.mark.crossdb_lazy_loads("raise")
    def test_the_marker_raises(self, employee):
        with pytest.raises(LazyLoadForbidden, match=r"CROSSDB_LAZY_LOADS='raise'"):
            employee.user  # noqa: B018

    @DB
    @pytest.mark.crossdb_lazy_loads("warn")
    def test_the_marker_warns(self, employee):
        with pytest.warns(LazyLoadWarning):
            employee.user  # noqa: B018

    def test_mode_seen_by_a_test(self):
        """Run by the next test in a pytest subprocess, with the option."""
        from django.conf import settings

        expected = os.environ.get("CROSSDB_EXPECTED_LAZY_LOADS")
        if expected is None:
            pytest.skip("run by test_the_option")
        assert getattr(settings, "CROSSDB_LAZY_LOADS", "allow") == expected

    @pytest.mark.parametrize("option", ["raise", "warn"])
    def test_the_option(self, option):
        node = "tests/test_lazy_loads.py::TestPytestPlugin::test_mode_seen_by_a_test"
        env = {**os.environ, "CROSSDB_EXPECTED_LAZY_LOADS": option}
        result = subprocess.run(
            [*PYTEST, node, f"--crossdb-lazy-loads={option}"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 passed" in result.stdout

    def test_the_option_refuses_other_values(self):
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "--crossdb-lazy-loads=never", "--co", "-q"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 4
        assert "--crossdb-lazy-loads: invalid choice: 'never'" in result.stderr
