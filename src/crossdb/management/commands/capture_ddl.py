"""
Print the SQL creating (or removing) a link's capture triggers, to run by hand:
those on the target's table, then those logging written references on the source's.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from crossdb.capture import field_for, target_database
from crossdb.capture_log_sql import LogSpec, log_install_sql, log_remove_sql, source_database
from crossdb.capture_sql import VENDORS, TriggerSpec, install_sql, remove_sql


class Command(BaseCommand):
    help = (
        "Print the SQL that creates the capture triggers of a link with capture_deletes=True "
        "(app_label.Model.field) in the database holding its target, and those logging "
        "written references in the database holding its source, to run by hand where "
        "Django does not run migrations. Nothing is executed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("link", help="app_label.Model.field")
        parser.add_argument(
            "--database",
            help="The alias whose SQL dialect to print. Default: the target's database for "
            "the capture triggers, the source's for the log triggers.",
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
        target_alias = options["database"] or target_database(field)
        source_alias = options["database"] or source_database(field)
        target, source = _connection(target_alias), _connection(source_alias)
        try:
            spec = TriggerSpec.of(field, link)
        except ValueError as error:
            raise CommandError(str(error), returncode=2) from error
        if options["remove"]:
            # Printed without reading the database: the triggers as the code names them.
            statements = remove_sql(link, target, names=[spec.name])
            logs = log_remove_sql(link, source, names=[LogSpec.of(field, link).name])
        else:
            statements = install_sql(spec, target)
            logs = log_install_sql(LogSpec.of(field, link), source)
        self.stdout.write(f"-- In database {target_alias!r} (the target's): capture triggers")
        for statement in statements:
            self.stdout.write(f"{statement};")
        self.stdout.write(
            f"-- In database {source_alias!r} (the source's): written references' log triggers"
        )
        for statement in logs:
            self.stdout.write(f"{statement};")


def _connection(alias: str) -> Any:
    if alias not in connections.settings:
        raise CommandError(f"Unknown database alias {alias!r}.", returncode=2)
    connection = connections[alias]
    if connection.vendor not in VENDORS:
        raise CommandError(
            f"Database {alias!r} is {connection.vendor}: crossdb has no capture triggers for it.",
            returncode=2,
        )
    return connection
