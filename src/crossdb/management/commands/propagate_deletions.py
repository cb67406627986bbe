"""Apply cross-database on_delete effects that a deletion left pending."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from crossdb.propagation import propagate_pending


class Command(BaseCommand):
    help = (
        "Apply the on_delete effects (CASCADE, SET_NULL, SET_DEFAULT, SET) of deletions "
        "whose propagation to another database did not finish, e.g. because the process "
        "died right after the deletion committed. Safe to run at any time, and repeatedly."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database",
            action="append",
            dest="databases",
            help="Only the pending rows stored in this database (repeatable). Default: all.",
        )
        parser.add_argument(
            "--older-than",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="Also leave rows younger than this (default: 0). Rows a live process has "
            "claimed are always left to it until its lease (CROSSDB_PROPAGATION_LEASE) ends.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        databases = options["databases"]
        for alias in databases or ():
            if alias not in connections.settings:
                raise CommandError(f"Unknown database {alias!r}.", returncode=2)
        if options["older_than"] < 0:
            raise CommandError("--older-than must be 0 or more.", returncode=2)
        older_than = options["older_than"]
        result = propagate_pending(databases, older_than=timedelta(seconds=older_than))
        summary = (
            f"{result.applied} pending propagation(s) applied, {result.rows_changed} "
            f"dependent row(s) changed, {result.failed} failed."
        )
        if result.skipped_claimed:
            summary += (
                f" {result.skipped_claimed} left to the runner that claimed them (applied "
                f"by it, or by a later run once its lease ends)."
            )
        if result.skipped_young:
            summary += (
                f" {result.skipped_young} younger than --older-than {older_than:g}s left "
                f"alone: run without --older-than to apply them now."
            )
        if result.failed:
            self.stderr.write(self.style.ERROR(summary))
            raise CommandError(
                "Some propagations failed; they stay pending with their error in "
                "crossdb_pendingpropagation.last_error.",
                returncode=1,
            )
        if options["verbosity"]:
            self.stdout.write(self.style.SUCCESS(summary))
