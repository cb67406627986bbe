"""Checks of the CROSSDB_* settings: crossdb.E030 to crossdb.E035, whole messages compared."""

from __future__ import annotations

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from crossdb import checks_settings

ALIASES = "'default', 'employee', 'asset'"


def run_all() -> list[checks.CheckMessage]:
    return [
        *checks_settings.check_routes(),
        *checks_settings.check_default_database(),
        *checks_settings.check_numbers(),
        *checks_settings.check_lazy_loads(),
    ]


def test_the_test_settings_pass():
    assert run_all() == []


def test_routes_must_be_a_dict():
    with override_settings(CROSSDB_ROUTES=[("hr", "employee")]):
        assert checks_settings.check_routes() == [
            checks.Error(
                "CROSSDB_ROUTES must be a dict, not list.",
                hint='Write it as {"app_label" or "app_label.ModelName": "alias"}.',
                obj="settings.CROSSDB_ROUTES",
                id="crossdb.E030",
            )
        ]


def test_routes_name_known_aliases():
    with override_settings(CROSSDB_ROUTES={"hr": "employees", "inventory": "asset"}):
        assert checks_settings.check_routes() == [
            checks.Error(
                "CROSSDB_ROUTES routes 'hr' to 'employees', which is not in DATABASES.",
                hint=f"Use one of DATABASES' aliases: {ALIASES}.",
                obj="settings.CROSSDB_ROUTES",
                id="crossdb.E031",
            )
        ]


def test_the_default_database_is_known():
    with override_settings(CROSSDB_DEFAULT_DATABASE="users"):
        assert checks_settings.check_default_database() == [
            checks.Error(
                "CROSSDB_DEFAULT_DATABASE is 'users', which is not in DATABASES.",
                hint=f"Use one of DATABASES' aliases: {ALIASES}, or remove the setting "
                "('default').",
                obj="settings.CROSSDB_DEFAULT_DATABASE",
                id="crossdb.E032",
            )
        ]


@pytest.mark.parametrize("value", [0, -1, 2.5, "100", True, None])
@pytest.mark.parametrize(
    "setting", ["CROSSDB_MAX_LOOKUP_KEYS", "CROSSDB_CHECK_MAX_ROWS", "CROSSDB_PREFETCH_BATCH_SIZE"]
)
def test_counts_are_positive_integers(setting, value):
    nullable = setting == "CROSSDB_PREFETCH_BATCH_SIZE"
    wanted = "None or a positive integer" if nullable else "a positive integer"
    with override_settings(**{setting: value}):
        found = checks_settings.check_numbers()
    if value is None and nullable:
        assert found == []
        return
    assert found == [
        checks.Error(
            f"{setting} must be {wanted}, not {value!r}.",
            hint=f"Set {setting} to {wanted}, or remove it to use the default.",
            obj=f"settings.{setting}",
            id="crossdb.E034",
        )
    ]


@pytest.mark.parametrize("value", [0, -5, float("nan"), float("inf"), 1e300, "300", None, False])
def test_the_lease_is_a_positive_number_of_seconds(value):
    wanted = "a positive number of seconds, at most 31536000 (a year)"
    with override_settings(CROSSDB_PROPAGATION_LEASE=value):
        assert checks_settings.check_numbers() == [
            checks.Error(
                f"CROSSDB_PROPAGATION_LEASE must be {wanted}, not {value!r}.",
                hint=f"Set CROSSDB_PROPAGATION_LEASE to {wanted}, or remove it to use the default.",
                obj="settings.CROSSDB_PROPAGATION_LEASE",
                id="crossdb.E033",
            )
        ]


@pytest.mark.parametrize("value", [0.5, 300, 3600.0])
def test_valid_leases(value):
    with override_settings(CROSSDB_PROPAGATION_LEASE=value):
        assert checks_settings.check_numbers() == []


def test_lazy_loads_mode():
    with override_settings(CROSSDB_LAZY_LOADS="error"):
        assert checks_settings.check_lazy_loads() == [
            checks.Error(
                "CROSSDB_LAZY_LOADS must be one of 'allow', 'warn', 'raise', not 'error'.",
                hint='Use "warn" or "raise" to find loads that need a prefetch, "allow" in '
                "production.",
                obj="settings.CROSSDB_LAZY_LOADS",
                id="crossdb.E035",
            )
        ]


def test_manage_py_check_reports_them():
    with (
        override_settings(CROSSDB_DEFAULT_DATABASE="users", CROSSDB_CHECK_MAX_ROWS=-1),
        pytest.raises(SystemCheckError) as raised,
    ):
        call_command("check")
    text = str(raised.value)
    assert "settings.CROSSDB_DEFAULT_DATABASE: (crossdb.E032)" in text
    assert "settings.CROSSDB_CHECK_MAX_ROWS: (crossdb.E034)" in text
