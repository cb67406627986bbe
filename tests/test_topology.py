"""The three aliases really are three databases, and the router puts each model in one."""

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections, router

from crossdb.models import PendingPropagation
from tests.factories import AssetFactory, EmployeeFactory
from tests.helpers import SHADOW_ALIASES, assert_num_queries_per_db, table_names
from tests.hr.models import Badge, Employee, Order
from tests.inventory.models import Asset
from tests.people.models import AutoTarget

pytestmark = pytest.mark.django_db(databases="__all__")

ALIASES = ("default", "employee", "asset")
HOME = {
    "auth_user": "default",
    "people_autotarget": "default",
    "people_uuidtarget": "default",
    "hr_employee": "employee",
    "hr_order": "employee",
    "hr_badge": "employee",
    "inventory_asset": "asset",
    "django_content_type": "default",
}


def test_three_aliases_are_configured():
    assert set(settings.DATABASES) == set(ALIASES)


def test_each_alias_is_its_own_database():
    names = {connections[alias].settings_dict["NAME"] for alias in ALIASES}
    assert len(names) == 3
    if settings.TOPOLOGY == "real":
        vendors = {alias: connections[alias].vendor for alias in ALIASES}
        assert vendors == {"default": "postgresql", "employee": "mysql", "asset": "sqlite"}
    else:
        assert all(".test-dbs" in name and name.endswith(".sqlite3") for name in names)


def test_mariadb_test_database_is_utf8mb4():
    if connections["employee"].vendor != "mysql":
        pytest.skip("the employee database is MariaDB in the real topology only")
    with connections["employee"].cursor() as cursor:
        cursor.execute("SELECT @@character_set_database, @@collation_database")
        assert cursor.fetchone() == ("utf8mb4", "utf8mb4_unicode_ci")


@pytest.mark.parametrize(("table", "home"), sorted(HOME.items()))
def test_table_exists_only_in_its_own_database(table, home):
    shadows = set(SHADOW_ALIASES) if table == "people_autotarget" else set()
    assert {alias for alias in ALIASES if table in table_names(alias)} == {home} | shadows


@pytest.mark.parametrize(
    ("model", "alias"),
    [
        (get_user_model(), "default"),
        (AutoTarget, "default"),
        (Employee, "employee"),
        (Order, "employee"),
        (Badge, "employee"),
        (Asset, "asset"),
    ],
)
def test_router_sends_each_model_to_its_database(model, alias):
    assert router.db_for_read(model) == alias
    assert router.db_for_write(model) == alias
    shadows = SHADOW_ALIASES if model is AutoTarget else ()
    migrated_on = [db for db in ALIASES if router.allow_migrate_model(db, model)]
    assert migrated_on == [db for db in ALIASES if db == alias or db in shadows]


@pytest.mark.parametrize("alias", ALIASES)
def test_crossdb_app_migrates_on_every_database(alias):
    assert router.allow_migrate(alias, "crossdb")
    assert PendingPropagation._meta.db_table in table_names(alias)


def test_rows_land_in_their_own_database():
    employee = EmployeeFactory()
    asset = AssetFactory(owner=employee)
    databases = (employee.user._state.db, employee._state.db, asset._state.db)
    assert databases == ("default", "employee", "asset")
    with assert_num_queries_per_db({"employee": 1}):
        assert list(Employee.objects.all()) == [employee]
    with assert_num_queries_per_db({"asset": 1}):
        assert list(Asset.objects.all()) == [asset]
