"""
Run ``migrate`` on every database, in the order of ``DATABASES``.

Exit status: 0 every database migrated (or, with --plan, planned), 1 a
migration failed (the databases after it are left alone), 2 unknown alias.
"""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.db.migrations.executor import MigrationExecutor


def ordered_aliases(only: list[str] | None = None) -> list[str]:
    """DATABASES' aliases (or those of ``only``), in the order DATABASES lists them."""
    return [alias for alias in connections.settings if only is None or alias in only]


def pending_migrations(alias: str) -> int:
    """How many migrations ``migrate --database alias`` would apply."""
    executor = MigrationExecutor(connections[alias])
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


class Command(BaseCommand):
    help = (
        "Migrate every database in DATABASES (or those named with --database), one after "
        "the other, in the order DATABASES lists them."
    )
    # Each migrate runs the checks itself, with its database's checks included.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database",
            action="append",
            dest="databases",
            help="Only this database (repeatable). Default: every database.",
        )
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="Tells Django to NOT prompt the user for input of any kind.",
        )
        parser.add_argument(
            "--plan",
            action="store_true",
            help="Show the migrations each database would get; apply nothing.",
        )
        parser.add_argument("--skip-checks", action="store_true", help="Skip system checks.")

    def handle(self, *args: Any, **options: Any) -> None:
        unknown = sorted(set(options["databases"] or ()) - set(connections.settings))
        if unknown:
            raise CommandError(
                f"Unknown database(s) {', '.join(map(repr, unknown))}. DATABASES has: "
                f"{', '.join(map(repr, ordered_aliases()))}.",
                returncode=2,
            )
        aliases = ordered_aliases(options["databases"])
        total = 0
        for position, alias in enumerate(aliases):
            try:
                total += self._migrate(alias, options)
            except Exception as error:
                rest = ", ".join(aliases[position + 1 :]) or "none"
                raise CommandError(
                    f"Migrating database {alias!r} failed: {error}\n"
                    f"Databases left unmigrated after it: {rest}.",
                    returncode=1,
                ) from error
        if options["verbosity"]:
            verb = "to apply" if options["plan"] else "applied"
            self.stdout.write(
                self.style.SUCCESS(
                    f"{len(aliases)} database(s), {total} migration(s) {verb}: "
                    f"{', '.join(aliases)}."
                )
            )

    def _migrate(self, alias: str, options: dict[str, Any]) -> int:
        verbosity = options["verbosity"]
        if verbosity:
            self.stdout.write(self.style.MIGRATE_HEADING(f"Database {alias!r}:"))
        count = pending_migrations(alias)
        call_command(
            "migrate",
            database=alias,
            interactive=options["interactive"],
            plan=options["plan"],
            skip_checks=options["skip_checks"],
            verbosity=verbosity,
            no_color=options["no_color"],
            force_color=options["force_color"],
            stdout=self.stdout._out,
            stderr=self.stderr._out,
        )
        if verbosity:
            self.stdout.write(self._summary(alias, count, options["plan"]))
        return count

    def _summary(self, alias: str, count: int, plan: bool) -> str:
        if not count:
            return f"{alias}: No migrations to apply."
        if plan:
            return self.style.WARNING(f"{alias}: {count} migration(s) to apply.")
        return self.style.SUCCESS(f"{alias}: {count} migration(s) applied.")
