"""
Apply cross-database on_delete effects that a deletion left pending.

Options, output and exit statuses only; ``crossdb.propagation.propagate_pending``
does the work. Exit status:

- 0: every pending record it took was applied;
- 1: some could not be applied (they stay pending, with their error);
- 2: usage error (an invalid option or unknown alias): nothing was read or written;
- 3: some database could not be reached: the records that need it stay pending,
  those of the other databases were applied.

With ``--format json`` stdout carries exactly one JSON document (``crossdb.reports``),
whatever the outcome; the human lines go to stderr.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any, NoReturn, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from crossdb import reports
from crossdb.progress import progress_bar
from crossdb.propagation import PropagationResult, older_than_seconds, propagate_pending

COMMAND = "propagate_deletions"
FORMATS = ("text", "json")


def usage_error(message: str) -> CommandError:
    return CommandError(message, returncode=2)


def asks_for_json(argv: list[str]) -> bool:
    """Whether a command line (not yet parsed) asks for ``--format json``."""
    pairs = zip(argv, [*argv[1:], ""], strict=True)
    return "--format=json" in argv or ("--format", "json") in pairs


class Command(BaseCommand):
    help = (
        "Apply the on_delete effects (CASCADE, SET_NULL, SET_DEFAULT, SET) of deletions "
        "whose propagation to another database did not finish, e.g. because the process "
        "died right after the deletion committed. Safe to run at any time, and repeatedly. "
        "Exit status: 0 all applied, 1 some failed, 2 usage error, 3 a database unreachable."
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
            default=None,
            metavar="SECONDS",
            help="Also leave rows younger than this (default: 0). Rows a live process has "
            "claimed are always left to it until its lease (CROSSDB_PROPAGATION_LEASE) ends.",
        )
        parser.add_argument(
            "--format",
            choices=FORMATS,
            default="text",
            help="json: one JSON document on stdout, whatever the outcome; the summary goes "
            "to stderr.",
        )
        parser.add_argument(
            "--progress",
            action="store_true",
            help="Show progress on stderr (records done, rate, ETA) even when stderr is not "
            "a terminal. Default: only on a terminal.",
        )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def error(message: str) -> NoReturn:
            # One line and exit 2, from the command line as from call_command().
            raise usage_error(message)

        parser.error = error  # type: ignore[method-assign]
        return parser

    def run_from_argv(self, argv: list[str]) -> None:
        clock = reports.Clock()
        try:
            super().run_from_argv(argv)
        except CommandError as error:  # raised while parsing: execute() handles the rest
            self._json = asks_for_json(argv[2:])
            self._write_error(error, clock)
            self.stderr.write(f"CommandError: {error}")
            sys.exit(error.returncode)

    def handle(self, *args: Any, **options: Any) -> None:
        clock = reports.Clock()
        self._json = options["format"] == "json"
        try:
            databases, older_than = self._options(options)
        except CommandError as error:
            self._write_error(error, clock)
            raise
        progress = self._progress(options)
        try:
            result = propagate_pending(
                databases, older_than=timedelta(seconds=older_than), progress=progress
            )
        finally:
            if progress is not None:
                progress.close()
        self._finish(result, clock, databases, older_than, options["verbosity"])

    def _options(self, options: dict[str, Any]) -> tuple[list[str] | None, float]:
        if options["format"] not in FORMATS:
            self._json = False
            raise usage_error(
                f"--format: {options['format']!r} is not one of {', '.join(map(repr, FORMATS))}."
            )
        databases = options["databases"]
        for alias in databases or ():
            if alias not in connections.settings:
                raise usage_error(
                    f"--database: unknown database {alias!r} (DATABASES has: "
                    f"{', '.join(map(repr, connections.settings))})."
                )
        if options["older_than"] is None:
            return databases, 0.0
        try:
            return databases, older_than_seconds(options["older_than"], "--older-than")
        except ValueError as error:
            raise usage_error(str(error)) from None

    def _progress(self, options: dict[str, Any]) -> Any:
        if options["progress"] or (options["verbosity"] and self.stderr.isatty()):
            stream: TextIO = self.stderr._out  # type: ignore[assignment]
            return progress_bar(stream, COMMAND)
        return None

    def _write_error(self, error: CommandError, clock: reports.Clock) -> None:
        if getattr(self, "_json", False):
            document = reports.envelope(
                COMMAND,
                clock,
                status="usage",
                exit_status=error.returncode,
                error=reports.error_object(str(error), error.returncode, "usage"),
            )
            self.stdout.write(reports.dumps(document))

    def _finish(
        self,
        result: PropagationResult,
        clock: reports.Clock,
        databases: list[str] | None,
        older_than: float,
        verbosity: int,
    ) -> None:
        summary = self._summary(result, older_than)
        error: CommandError | None = None
        kind = "ok"
        if result.unreachable:
            kind = "unreachable"
            down = "; ".join(f"{alias!r} ({why})" for alias, why in result.unreachable.items())
            error = CommandError(
                f"Database(s) unreachable: {down}. The records that need them stay pending; "
                f"those of the other databases were applied.",
                returncode=3,
            )
        elif result.failed:
            kind = "failed"
            error = CommandError(
                f"{result.failed} propagation(s) failed; they stay pending with their error in "
                f"crossdb_pendingpropagation.last_error.",
                returncode=1,
            )
        if self._json:
            document = self._document(result, clock, databases, older_than, kind, error)
            self.stdout.write(reports.dumps(document))
        human = self.stderr if self._json or error else self.stdout
        if verbosity or error:
            style = self.style.ERROR if error else self.style.SUCCESS
            human.write(style(summary))
        if error is not None:
            raise error

    def _summary(self, result: PropagationResult, older_than: float) -> str:
        summary = (
            f"{result.applied} pending propagation(s) applied, {result.rows_changed} "
            f"dependent row(s) changed, {result.failed} failed."
        )
        if result.skipped_claimed:
            summary += f" {result.skipped_claimed} left to the runner that claimed them: "
            summary += result.claimed_hint()
        if result.skipped_young:
            summary += (
                f" {result.skipped_young} younger than --older-than {older_than:g}s left "
                f"alone: run without --older-than to apply them now."
            )
        return summary

    def _document(
        self,
        result: PropagationResult,
        clock: reports.Clock,
        databases: list[str] | None,
        older_than: float,
        kind: str,
        error: CommandError | None,
    ) -> dict[str, Any]:
        failure = (
            None if error is None else reports.error_object(str(error), error.returncode, kind)
        )
        return reports.envelope(
            COMMAND,
            clock,
            databases=result.databases(),
            status=kind,
            exit_status=0 if error is None else error.returncode,
            options={"databases": databases, "older_than_s": older_than},
            **result.as_dict(),
            error=failure,
        )
