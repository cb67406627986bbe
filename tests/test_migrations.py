"""Schema: the column and its index exist, no foreign key constraint does, in any database."""

import importlib
import sys
import uuid

import pytest
from django.db import connections, router
from django.test import override_settings

from tests.helpers import columns, constraints, introspected_type, run_command
from tests.hr.models import Badge, Employee, Order
from tests.inventory.models import Asset, Label

ALIASES = ("default", "employee", "asset")
CROSSDB_MODELS = (Employee, Order, Badge, Asset, Label)
# (model, column, the type introspection reports for the target's key, unique)
CROSSDB_COLUMNS = [
    (Employee, "user_id", "IntegerField", False),
    (Order, "buyer_id", "IntegerField", False),
    (Order, "big_id", "BigIntegerField", False),
    (Order, "uuid_target_id", "UUIDField", False),
    (Order, "code_ref", ("CharField", 12), False),
    (Order, "slug_target_id", ("CharField", 50), False),
    (Badge, "user_id", "IntegerField", True),
    (Asset, "owner_id", "IntegerField", False),
    (Label, "target_id", "IntegerField", False),
]
COLUMN_IDS = [f"{model.__name__}.{column}" for model, column, _, _ in CROSSDB_COLUMNS]


def column_type(alias, table, column):
    """What ``connection.introspection`` makes of the real column: a type, and a length."""
    info = columns(alias, table)[column]
    field_type = introspected_type(alias, table, column)
    return (field_type, info.display_size) if field_type == "CharField" else field_type


def expected_type(alias, expected):
    # Without a native uuid type (SQLite, MariaDB < 10.7) Django stores UUIDs as char(32).
    if expected == "UUIDField" and not connections[alias].features.has_native_uuid_field:
        return ("CharField", 32)
    return expected


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize(("model", "column", "expected", "unique"), CROSSDB_COLUMNS, ids=COLUMN_IDS)
def test_column_type_index_and_no_constraint(model, column, expected, unique):
    alias = router.db_for_write(model)
    table = model._meta.db_table
    assert column_type(alias, table, column) == expected_type(alias, expected)
    on_column = [c for c in constraints(alias, table).values() if c["columns"] == [column]]
    assert on_column, f"no index on {table}.{column} in {alias}"
    assert any(c["unique"] if unique else c["index"] for c in on_column)
    assert not [c for c in on_column if c["foreign_key"]]


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize("model", CROSSDB_MODELS, ids=lambda m: m.__name__)
def test_no_foreign_key_constraint_at_all(model):
    alias = router.db_for_write(model)
    found = {
        name: c["foreign_key"]
        for name, c in constraints(alias, model._meta.db_table).items()
        if c["foreign_key"]
    }
    assert found == {}


@pytest.mark.django_db(databases="__all__", transaction=True)
@pytest.mark.parametrize("alias", ALIASES)
def test_create_table_sql_has_no_references(alias):
    # SQLite's schema editor refuses to run inside the test's transaction, hence transaction=True.
    with connections[alias].schema_editor(collect_sql=True) as editor:
        for model in CROSSDB_MODELS:
            editor.create_model(model)
    sql = "\n".join(editor.collected_sql)
    assert "REFERENCES" not in sql.upper()
    assert "FOREIGN KEY" not in sql.upper()
    assert "code_ref" in sql and "slug_target_id" in sql


@pytest.fixture
def migrations_package(tmp_path):
    """Send the test apps' migrations to a throwaway package instead of their (absent) folders."""
    package = f"crossdb_test_migrations_{uuid.uuid4().hex[:8]}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    modules = {app: f"{package}.{app}" for app in ("people", "hr", "inventory")}
    try:
        with override_settings(MIGRATION_MODULES=modules):
            yield tmp_path / package
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith(package)]:
            del sys.modules[name]


@pytest.fixture
def made_migrations(migrations_package):
    result = run_command("makemigrations", "people", "hr", "inventory", verbosity=0)
    assert result.exit_code == 0, result.stderr
    importlib.invalidate_caches()
    return migrations_package


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_makemigrations_writes_the_field(made_migrations):
    hr = (made_migrations / "hr" / "0001_initial.py").read_text()
    assert "crossdb.CrossDBForeignKey(" in hr
    assert "crossdb.CrossDBOneToOneField(" in hr
    assert "migrations.swappable_dependency(settings.AUTH_USER_MODEL)" in hr
    assert "to=settings.AUTH_USER_MODEL" in hr
    assert "db_constraint" not in hr
    assert "db_column='code_ref'" in hr or 'db_column="code_ref"' in hr
    inventory = (made_migrations / "inventory" / "0001_initial.py").read_text()
    assert "database='employee'" in inventory or 'database="employee"' in inventory


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_migrations_are_stable(made_migrations):
    result = run_command("makemigrations", "people", "hr", "inventory", check=True, dry_run=True)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


@pytest.mark.django_db(databases="__all__", transaction=True)
@pytest.mark.parametrize(("app", "alias"), [("hr", "employee"), ("inventory", "asset")])
def test_sqlmigrate_has_an_index_and_no_references(made_migrations, app, alias):
    result = run_command("sqlmigrate", app, "0001", database=alias)
    assert result.exit_code == 0, result.stderr
    sql = result.stdout
    assert "CREATE TABLE" in sql
    assert "REFERENCES" not in sql.upper()
    assert "FOREIGN KEY" not in sql.upper()
    assert "CREATE INDEX" in sql.upper() or "KEY `" in sql
