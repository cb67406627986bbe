"""
A narrated tour of CrossDBForeignKey: migrate every database, add sample data, then run a few
lines of ORM code and count the queries each one sends to each database.
"""

import textwrap
from contextlib import ExitStack
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, connections, router
from django.test.utils import CaptureQueriesContext

from asset_app.models import Asset
from crossdb import CrossDatabaseJoinError, DanglingReference
from employee_app.models import Employee

User = get_user_model()

# username, is_staff, employee_id, position
PEOPLE = [
    ("ada", True, "E1001", "Site reliability engineer"),
    ("grace", True, "E1002", "Engineering manager"),
    ("linus", False, "E1003", "Support technician"),
]
# serial, name, status, assigned_to, managed_by (employee ids)
ASSETS = [
    ("LT-0001", "Laptop", Asset.STATUS.assigned, "E1001", "E1002"),
    ("PH-0001", "Phone", Asset.STATUS.assigned, "E1003", "E1002"),
    ("MN-0001", "Monitor", Asset.STATUS.in_stock, None, "E1002"),
]


class Step(NamedTuple):
    note: str
    code: str  # run with eval() so that what is printed is exactly what ran
    keep_as: str | None = None
    raises: type[Exception] | None = None


TOUR = [
    Step(
        "Employee rows come from 'employee'.",
        'Employee.objects.get(employee_id="E1001")',
        keep_as="employee",
    ),
    Step("The key is a real column: reading it costs nothing.", "employee.user_id"),
    Step("The first access loads the User from 'default', where it lives...", "employee.user"),
    Step("...and caches it on the instance.", "employee.user"),
    Step(
        "A remote queryset runs on its own database, then filters by key on 'employee'.",
        "list(Employee.objects.filter(user__in=User.objects.filter(is_staff=True)))",
    ),
    Step(
        "The reverse accessor reads the employees from 'employee'.",
        "list(employee.user.employees.all())",
    ),
    Step(
        "Three databases in one line: asset -> employee -> default.",
        'Asset.objects.get(serial="LT-0001").assigned_to.user',
    ),
    Step(
        "A key whose row is gone raises a precise DoesNotExist.",
        'Employee(employee_id="E9999", user_id=424242).user',
        raises=DanglingReference,
    ),
    Step(
        "SQL cannot join tables in two databases, so the ORM refuses before querying.",
        'Employee.objects.select_related("user").first()',
        raises=CrossDatabaseJoinError,
    ),
    Step(
        "prefetch_related() works instead: one query per database, not one per row.",
        '[e.user.username for e in Employee.objects.prefetch_related("user")]',
    ),
]

# The servers settings.py can point at: their names, and how to create a missing database.
SERVERS = {
    "postgresql": ("PostgreSQL", "psql -U {USER} -h {HOST} -p {PORT} -c 'CREATE DATABASE {NAME}'"),
    "mysql": ("MariaDB", "mariadb -u{USER} -h{HOST} -P{PORT} -e 'CREATE DATABASE {NAME}'"),
}


class Command(BaseCommand):
    help = "Migrate every database, add sample data and show what cross-database access costs."
    # The checks need a connection to each server; migrate runs them once connect() has
    # explained any server or database that is missing.
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, verbosity: int, **options: Any) -> None:
        self.verbosity = verbosity
        for alias in settings.DATABASES:
            self.connect(alias)
            call_command("migrate", database=alias, verbosity=0, interactive=False)
        self.create_sample_data()
        self.show_databases()
        namespace: dict[str, Any] = {"User": User, "Employee": Employee, "Asset": Asset}
        for step in TOUR:
            self.stdout.write("")
            self.stdout.write(self.style.MIGRATE_HEADING(f"# {step.note}"))
            self.run(step, namespace)

    def connect(self, alias: str) -> None:
        connection = connections[alias]
        try:
            connection.ensure_connection()
        except OperationalError as exc:
            if connection.vendor not in SERVERS:
                raise
            params = connection.settings_dict
            server, create = SERVERS[connection.vendor]
            where = f"{server} at {params['HOST']}:{params['PORT']}"
            if "does not exist" in str(exc) or "Unknown database" in str(exc):
                message = f"The {alias!r} database {params['NAME']!r} does not exist on {where}."
                hint = f"Create it with:\n    {create.format(**params)}"
            else:
                message = f"Cannot connect to the {alias!r} database on {where}: {exc}"
                hint = f"Start the server, or unset CROSSDB_EXAMPLE_{alias.upper()} to use SQLite."
            raise CommandError(f"{message}\n{hint}") from exc

    def create_sample_data(self) -> None:
        employees = {}
        for username, is_staff, employee_id, position in PEOPLE:
            user, _ = User.objects.get_or_create(username=username, defaults={"is_staff": is_staff})
            employees[employee_id], _ = Employee.objects.get_or_create(
                employee_id=employee_id, defaults={"user": user, "position": position}
            )
        for serial, name, status, assigned_to, managed_by in ASSETS:
            Asset.objects.get_or_create(
                serial=serial,
                defaults={
                    "name": name,
                    "status": status,
                    "assigned_to": employees.get(assigned_to),
                    "managed_by": employees[managed_by],
                },
            )

    def show_databases(self) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING("Where each model lives (CROSSDB_ROUTES):"))
        for model in (User, Employee, Asset):
            alias = router.db_for_read(model)
            engine = connections[alias].display_name
            count = model.objects.count()
            self.stdout.write(f"  {model._meta.label:<22} {alias:<9} {engine:<11} {count} rows")

    def run(self, step: Step, namespace: dict[str, Any]) -> None:
        prefix = f"{step.keep_as} = " if step.keep_as else ""
        self.stdout.write(f">>> {prefix}{step.code}")
        shown = ""
        with ExitStack() as stack:
            captured = {
                alias: stack.enter_context(CaptureQueriesContext(connections[alias]))
                for alias in settings.DATABASES
            }
            try:
                result = eval(step.code, namespace)
            except Exception as exc:
                if step.raises is None or not isinstance(exc, step.raises):
                    raise
                message = f"{type(exc).__qualname__}: {exc}"
                self.stdout.write(self.style.WARNING(textwrap.fill(message, 100)))
            else:
                if step.raises is not None:
                    raise CommandError(f"{step.code} should have raised {step.raises.__name__}.")
                if step.keep_as:
                    namespace[step.keep_as] = result
                else:
                    shown = f"{result!r}  "
        self.stdout.write(shown + self.style.SUCCESS(f"({describe(captured)})"))
        if self.verbosity >= 2:
            for alias, context in captured.items():
                for query in context.captured_queries:
                    self.stdout.write(f"    [{alias}] {query['sql']}")


def describe(captured: dict[str, CaptureQueriesContext]) -> str:
    counts = {alias: len(context) for alias, context in captured.items() if len(context)}
    if not counts:
        return "no query"
    total = sum(counts.values())
    per_database = ", ".join(f"{count} on {alias}" for alias, count in counts.items())
    return f"{total} {'query' if total == 1 else 'queries'}: {per_database}"
