"""
Find (and on request repair) references across databases whose target is missing.

Exit status: 0 no orphans (or none left after a repair), 1 orphans found, 2 the
command could not run or could not check every link (an invalid option, an
unknown label or alias, an unreachable database, a repair refused). With
``--format json`` stdout carries exactly one JSON document, whatever happens;
everything meant for people goes to stderr.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.utils import DatabaseError

from crossdb.verification import (
    DEFAULT_BATCH_SIZE,
    LinkResult,
    Partition,
    VerificationError,
    Verifier,
    link_label,
    select_links,
)
from crossdb.verification.engine import connection_error
from crossdb.verification.incremental import IncrementalVerifier, split_logged
from crossdb.verification.progress import Progress
from crossdb.verification.report import (
    document,
    reconcile_truncations,
    remembered_tables,
    truncation_line,
    truncation_markers_seen,
)

# The accepted range of each numeric option: (option, lowest, highest).
BOUNDS = {
    "batch_size": ("--batch-size", 1, 1_000_000),
    "sample": ("--sample", 0, 10_000),
    "max_fix": ("--max-fix", 0, 1_000_000_000),
}
MAX_PARTS = 10_000


class Failure(Exception):
    """The run cannot go on: a message, and what it is about (option, value, label, alias)."""

    def __init__(self, message: str, **about: Any) -> None:
        super().__init__(message)
        self.about = about


class Command(BaseCommand):
    help = (
        "Check every CrossDBForeignKey / CrossDBOneToOneField (or those named) for "
        "references whose target row does not exist, and optionally repair them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "labels",
            nargs="*",
            metavar="label",
            help="app_label, app_label.Model or app_label.Model.field (default: every link).",
        )
        parser.add_argument("--database", help="Only links stored in this database.")
        parser.add_argument(
            "--batch-size",
            default=str(DEFAULT_BATCH_SIZE),
            help=f"Source rows read per page (default {DEFAULT_BATCH_SIZE:,}; at most 1,000,000).",
        )
        parser.add_argument("--format", default="text", help="text (default) or json.")
        parser.add_argument(
            "--sample", default="10", help="Dangling keys to show per link (default 10)."
        )
        parser.add_argument(
            "--fix",
            help="Repair orphans: set-null sets the reference to NULL, delete deletes the rows "
            "(through the ORM, so their own on_delete rules run).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="With --fix: report what would change."
        )
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="Do not ask for confirmation before repairing.",
        )
        parser.add_argument(
            "--max-fix",
            default="1000",
            help="Refuse to repair more rows than this (default 1000): a mass of orphans "
            "usually means a restored or misrouted database, not deleted parents.",
        )
        parser.add_argument(
            "--partition",
            metavar="K/N",
            help=f"Check only part K (0 to N-1) of N disjoint ranges of each link "
            f"(N at most {MAX_PARTS:,}).",
        )
        parser.add_argument(
            "--incremental",
            action="store_true",
            help="Check only the references written since the previous runs (links with "
            "capture_deletes=True; the others are skipped with a note).",
        )
        parser.add_argument(
            "--progress",
            action="store_true",
            help="Show progress on stderr even when it is not a terminal.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.started_at = datetime.now(timezone.utc)
        self.json = options["format"] == "json"
        self.results: list[LinkResult] = []
        self.not_checked: list[dict[str, Any]] = []
        self.databases: set[str] = set()
        # A run that sees every reference: the truncate markers each link had before its scan.
        self.markers_seen: dict[str, list[int]] | None = None
        self.truncated: list[dict[str, Any]] = []
        try:
            with remembered_tables():
                self._handle(options)
        except Failure as failure:
            if self.json:
                self._write_document({"message": str(failure), **failure.about})
            elif (self.results or self.not_checked) and options["verbosity"]:
                self._write_text(options)
            raise CommandError(str(failure), returncode=2) from None

    def _handle(self, options: dict[str, Any]) -> None:
        settings = _validated(options)
        try:
            links = select_links(options["labels"], options["database"])
        except VerificationError as error:
            raise Failure(str(error), **error.about) from None
        fix = settings["fix"]
        if fix == "set-null" and (not_nullable := [link_label(x) for x in links if not x.null]):
            raise Failure(
                f"--fix set-null cannot repair non-nullable links: {', '.join(not_nullable)}. "
                f"Nothing was changed.",
                option="--fix",
                value=fix,
                label=not_nullable[0],
            )
        if options["incremental"]:
            links = self._incremental_links(links, settings)
        verifier_class = IncrementalVerifier if options["incremental"] else Verifier
        partition = settings["partition"]
        # Only a run that sees every reference may say a truncation left nothing unreported:
        # --incremental reads the logged ones only (those the truncation left were not).
        if (
            (partition is None or partition.count == 1)
            and not settings["dry_run"]
            and not options["incremental"]
        ):
            self.markers_seen = {}
        verifiers = [
            verifier_class(
                link,
                batch_size=settings["batch_size"],
                sample=settings["sample"],
                partition=settings["partition"],
                collect_limit=settings["max_fix"] if fix else 0,
            )
            for link in links
        ]
        unreachable = self._run(verifiers, options)
        if unreachable:
            repair = " Nothing was repaired." if fix else ""
            raise self._unreachable(unreachable, repair)
        if fix and any(r.orphans for r in self.results):
            self._repair(verifiers, settings, options)
        self.truncated = reconcile_truncations(self.results, self.markers_seen)
        if self.json:
            self._write_document(None)
        elif options["verbosity"]:
            self._write_text(options)
        if any(r.orphans for r in self.results):
            raise SystemExit(1)

    def _incremental_links(self, links: list[Any], settings: dict[str, Any]) -> list[Any]:
        try:
            logged, skipped = split_logged(links, settings["partition"])
        except VerificationError as error:
            raise Failure(str(error), **error.about) from None
        if skipped:
            self.stderr.write(
                f"Skipped (no capture_deletes=True, so nothing is logged; run a full "
                f"verify_links for them): {', '.join(skipped)}."
            )
        return logged

    # The scan -------------------------------------------------------------------------

    def _run(self, verifiers: list[Verifier], options: dict[str, Any]) -> dict[str, str]:
        """Check each link whose databases answer; return ``{alias: error}`` for the others."""
        unreachable: dict[str, str] = {}
        for verifier in verifiers:
            aliases = verifier.databases()
            self.databases.update(aliases)
            for alias in aliases:
                if alias not in unreachable and (error := connection_error(alias)):
                    unreachable[alias] = error
            if down := [alias for alias in aliases if alias in unreachable]:
                self._not_checked(verifier, f"database {down[0]!r} is unreachable", down[0])
                continue
            progress = self._progress(verifier, options)
            if self.markers_seen is not None:
                self.markers_seen[link_label(verifier.field)] = truncation_markers_seen(
                    verifier.field, verifier.target_db
                )
            try:
                self.results.append(verifier.run())
            except DatabaseError as error:
                # Not an unreachable database (checked above): a missing table, a lost connection.
                self._not_checked(verifier, f"{type(error).__name__}: {error}".strip(), None)
                unreachable.setdefault(verifier.source_db, str(error).strip().split("\n")[0])
            finally:
                if progress is not None:
                    progress.close()
        return unreachable

    def _not_checked(self, verifier: Verifier, message: str, alias: str | None) -> None:
        self.not_checked.append(
            {
                "model": verifier.field.model._meta.label,
                "field": verifier.field.name,
                "database": verifier.source_db,
                "target_database": verifier.target_db,
                "error": {"message": message, "alias": alias},
            }
        )

    def _unreachable(self, unreachable: dict[str, str], consequence: str = "") -> Failure:
        """One line naming each database that failed and the links left unchecked."""
        failed = "; ".join(f"database {alias!r}: {error}" for alias, error in unreachable.items())
        labels = ", ".join(f"{link['model']}.{link['field']}" for link in self.not_checked)
        return Failure(
            f"Could not check every link ({failed}). Not checked: {labels}.{consequence}",
            alias=next(iter(unreachable)),
        )

    def _progress(self, verifier: Verifier, options: dict[str, Any]) -> Progress | None:
        stream = cast(TextIO, self.stderr._out)  # the stream itself: a bar rewrites its line
        if not (options["progress"] or (options["verbosity"] and stream.isatty())):
            return None
        progress = Progress(link_label(verifier.field), verifier.estimated_total(), stream)
        verifier.progress = progress.update
        return progress

    # Repairs ----------------------------------------------------------------------------

    def _repair(
        self, verifiers: list[Verifier], settings: dict[str, Any], options: dict[str, Any]
    ) -> None:
        fix, total = settings["fix"], sum(r.orphans for r in self.results)
        action = "set to NULL" if fix == "set-null" else "deleted (with their cascades)"
        if total > settings["max_fix"]:
            raise Failure(
                f"{total} orphaned rows would be {action}, more than --max-fix "
                f"{settings['max_fix']}. That many usually means a database was restored or "
                f"misrouted; check before raising --max-fix. Nothing was changed.",
                option="--max-fix",
                value=settings["max_fix"],
            )
        if settings["dry_run"]:
            self._say(f"Dry run: {total} orphaned row(s) would be {action}.")
            return
        with_orphans = [v for v, r in zip(verifiers, self.results, strict=True) if r.orphans]
        needed = {alias for verifier in with_orphans for alias in verifier.databases(fix)}
        self.databases.update(needed)
        if down := {alias: e for alias in sorted(needed) if (e := connection_error(alias))}:
            failed = "; ".join(f"database {alias!r}: {error}" for alias, error in down.items())
            raise Failure(
                f"--fix {fix} would reach a database that is unreachable ({failed}). "
                f"Nothing was changed.",
                option="--fix",
                value=fix,
                alias=next(iter(down)),
            )
        if options["interactive"] and not self._confirmed(
            f"{total} orphaned row(s) will be {action}"
        ):
            self._say("Repair cancelled; nothing was changed.")
            return
        repaired = 0
        for index, verifier in enumerate(verifiers):
            if not self.results[index].orphans:
                continue
            try:
                repaired += verifier.repair(self.results[index].repairable_keys, fix)
            except DatabaseError as error:
                raise Failure(
                    f"Repairing {link_label(verifier.field)} failed ({error}); its batch in "
                    f"progress was rolled back, {repaired} row(s) of the links before it were "
                    f"repaired. Run verify_links again to see what is left.",
                    option="--fix",
                    value=fix,
                    label=link_label(verifier.field),
                ) from None
            self.results[index] = verifier.run()  # what remains decides the exit status
        if options["verbosity"]:
            self._say(self.style.SUCCESS(f"Repaired: {total} row(s) {action}."))

    def _confirmed(self, question: str) -> bool:
        # The question goes to stderr: with --format json stdout holds the document only.
        self.stderr.write(f"{question}. Type 'yes' to continue: ", ending="")
        self.stderr.flush()
        return input() == "yes"

    # Output -----------------------------------------------------------------------------

    def _say(self, line: str) -> None:
        """A line for people: on stdout, or on stderr when stdout holds the JSON document."""
        (self.stderr if self.json else self.stdout).write(line)

    def _write_document(self, error: dict[str, Any] | None) -> None:
        report = document(
            [r.as_dict() for r in self.results],
            None if error is None or self.results else [],
            not_checked=self.not_checked,
            error=error,
            started_at=self.started_at,
            databases=self.databases,
            truncated=self.truncated,
        )
        self.stdout.write(json.dumps(report, indent=2))

    def _write_text(self, options: dict[str, Any]) -> None:
        report = document([r.as_dict() for r in self.results], truncated=self.truncated)
        for result in self.results:
            self._write_link(result, options)
        for link in self.not_checked:
            self.stdout.write(
                f"{link['model']}.{link['field']}  ({link['database']} -> "
                f"{link['target_database']})\n"
                + self.style.ERROR(f"  not checked: {link['error']['message']}")
            )
        for row in report["pending_propagations"]:
            self.stdout.write(
                self.style.WARNING(
                    f"Pending propagation: {row['link']}: {row['keys']} deleted "
                    f"{row['target']} key(s) since {row['oldest']} in {row['database']!r} "
                    f"(run `manage.py propagate_deletions`)."
                )
            )
        for row in report["captured_deletions"]:
            self.stdout.write(
                self.style.WARNING(
                    f"Captured deletions: {row['link']}: {row['rows']} deleted key(s) queued "
                    f"in {row['database']!r}, the oldest {row['oldest_age_s']:.0f} s old "
                    f"(run `manage.py propagate_deletions`)."
                )
            )
        for row in report["truncations"]:
            self.stdout.write(self.style.WARNING(truncation_line(row)))
        total = report["total_orphans"]
        with_orphans = sum(1 for r in self.results if r.orphans)
        summary = (
            f"{len(self.results)} link(s) checked, {sum(r.checked for r in self.results)} "
            f"reference(s), {total} orphan(s) in {with_orphans} link(s)."
        )
        style = self.style.ERROR if total or self.not_checked else self.style.SUCCESS
        self.stdout.write(style(summary))

    def _write_link(self, result: LinkResult, options: dict[str, Any]) -> None:
        field = result.field
        target = field.remote_field.model._meta.label
        self.stdout.write(
            f"{link_label(field)} -> {target}  ({result.database} -> {result.target_database})"
        )
        line = f"  checked {result.checked:>10}   orphans {result.orphans:>8}"
        if result.pending:
            line += f"   pending {result.pending}"
        self.stdout.write(self.style.ERROR(line) if result.orphans else line)
        if result.sample and options["verbosity"] >= 1:
            self.stdout.write(f"  sample: {', '.join(map(str, result.sample))}")


def _validated(options: dict[str, Any]) -> dict[str, Any]:
    """Every option checked before anything is read: a Failure names the first bad one."""
    if options["format"] not in ("text", "json"):
        raise Failure(
            f"--format {options['format']!r}: use text or json.",
            option="--format",
            value=options["format"],
        )
    settings: dict[str, Any] = {name: _number(options[name], *BOUNDS[name]) for name in BOUNDS}
    fix = options["fix"]
    if fix not in (None, "set-null", "delete"):
        raise Failure(f"--fix {fix!r}: use set-null or delete.", option="--fix", value=fix)
    if options["dry_run"] and not fix:
        raise Failure("--dry-run only makes sense with --fix.", option="--dry-run", value=True)
    partition = options["partition"]
    if isinstance(partition, str):
        try:
            partition = Partition.parse(partition)
        except ValueError as error:
            raise Failure(str(error), option="--partition", value=options["partition"]) from None
    if partition is not None and partition.count > MAX_PARTS:
        raise Failure(
            f"--partition {partition.index}/{partition.count}: N must be at most {MAX_PARTS:,}.",
            option="--partition",
            value=options["partition"] if isinstance(options["partition"], str) else None,
        )
    return {
        **settings,
        "fix": fix,
        "dry_run": options["dry_run"],
        "partition": partition,
    }


def _number(value: Any, option: str, lowest: int, highest: int) -> int:
    """``value`` (a string from the command line, or an int from call_command) within bounds."""
    text = str(value).strip().replace("_", "")
    if isinstance(value, bool) or not text.lstrip("-").isdigit() or len(text) > 20:
        number = None
    else:
        number = int(text)
    if number is None or not lowest <= number <= highest:
        raise Failure(
            f"{option} {value!r}: must be a whole number from {lowest:,} to {highest:,}.",
            option=option,
            value=value,
        )
    return number
