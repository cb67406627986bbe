"""Print the SQL creating (or removing) a link's capture triggers, to run by hand."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from crossdb.capture import field_for, target_database
from crossdb.capture_sql import VENDORS, TriggerSpec, install_sql, remove_sql


class Command(BaseCommand):
    help = (
        "Print the SQL that creates the capture triggers of a link with capture_deletes=True "
        "(app_label.Model.field) in the database holding its target, to run by hand where "
        "Django does not run migrations. Nothing is executed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("link", help="app_label.Model.field")
        parser.add_argument(
            "--database",
            help="The alias whose SQL dialect to print. Default: the target's database.",
        )
        parser.add_argument(
            "--remove", action="store_true", help="Print the SQL removing the triggers instead."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        link = options["link"]
        try:
            field = field_for(link)
        except (LookupError, ValueError, Exception) as error:
            raise CommandError(f"Unknown link {link!r}: {error}", returncode=2) from error
        alias = options["database"] or target_database(field)
        if alias not in connections.settings:
            raise CommandError(f"Unknown database alias {alias!r}.", returncode=2)
        connection = connections[alias]
        if connection.vendor not in VENDORS:
            raise CommandError(
                f"Database {alias!r} is {connection.vendor}: crossdb has no capture triggers "
                f"for it.",
                returncode=2,
            )
        try:
            spec = TriggerSpec.of(field, link)
        except ValueError as error:
            raise CommandError(str(error), returncode=2) from error
        if options["remove"]:
            # Printed without reading the database: the triggers as the code names them.
            statements = remove_sql(link, connection, names=[spec.name])
        else:
            statements = install_sql(spec, connection)
        for statement in statements:
            self.stdout.write(f"{statement};")
