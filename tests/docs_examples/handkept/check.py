"""
``python check.py before|after``, in a copy of the hand-kept app (see ``__init__.py``).

before: migrate, then save a user and an employee holding its id by hand.
asks: (models.py is now the example project's) makemigrations alone wants a default.
after: (0002 is in place) what docs/tutorial.rst says: the hand-written migration keeps
the column and its data, drops the unique constraint and keeps an index; ``makemigrations
--check`` finds no change; the migration runs backwards.
"""

import io
import sys

import django
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections


def user_id_constraints() -> list[dict]:
    connection = connections["employee"]
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "employee_app_employee")
    return [c for c in found.values() if c["columns"] == ["user_id"]]


def before() -> None:
    from django.contrib.auth.models import User
    from employee_app.models import Employee

    for alias in ("default", "employee"):
        call_command("migrate", database=alias, interactive=False, verbosity=0)
    ada = User.objects.create_user(username="ada")
    Employee.objects.create(user_id=ada.pk, employee_id="E1001", position="SRE")
    assert Employee.objects.get().get_user() == ada
    assert any(c["unique"] for c in user_id_constraints()), user_id_constraints()


def asks() -> None:
    asked = io.StringIO()
    try:
        call_command(
            "makemigrations", "employee_app", dry_run=True, interactive=False, stdout=asked
        )
    except (CommandError, SystemExit):
        pass  # it asks for a default, and cannot without input
    else:
        raise AssertionError(f"makemigrations alone did not ask for a default: {asked.getvalue()}")


def after() -> None:
    from django.contrib.auth.models import User
    from employee_app.models import Employee

    call_command("migrate", "employee_app", database="employee", interactive=False, verbosity=0)
    employee = Employee.objects.get(employee_id="E1001")
    assert employee.user == User.objects.get(username="ada")
    constraints = user_id_constraints()
    assert not any(c["unique"] for c in constraints), constraints
    assert any(c["index"] for c in constraints), constraints

    report = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=report)
    assert "No changes detected" in report.getvalue(), report.getvalue()

    call_command("migrate", "employee_app", "0001", database="employee", verbosity=0)
    assert any(c["unique"] for c in user_id_constraints()), user_id_constraints()
    with connections["employee"].cursor() as cursor:
        cursor.execute("SELECT user_id FROM employee_app_employee")
        assert [tuple(row) for row in cursor.fetchall()] == [(employee.user_id,)]


if __name__ == "__main__":
    django.setup()
    {"before": before, "asks": asks, "after": after}[sys.argv[1]]()
    print("OK")
