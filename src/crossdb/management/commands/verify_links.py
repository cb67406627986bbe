"""
Find (and on request repair) references across databases whose target is missing.

Exit status: 0 no orphans (or none left after a repair), 1 orphans found,
2 could not run (unknown label or alias, unreachable database, invalid option).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

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
from crossdb.verification.report import document


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _not_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def _partition(text: str) -> Partition:
    try:
        return Partition.parse(text)
    except ValueError as error:
        # argparse shows an ArgumentTypeError's own message, not a generic one.
        raise argparse.ArgumentTypeError(str(error)) from None


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
            type=_positive,
            default=DEFAULT_BATCH_SIZE,
            help=f"Source rows read per page (default {DEFAULT_BATCH_SIZE:,}).",
        )
        parser.add_argument("--format", choices=["text", "json"], default="text")
        parser.add_argument(
            "--sample",
            type=_not_negative,
            default=10,
            help="Dangling keys to show per link (default 10).",
        )
        parser.add_argument(
            "--fix",
            choices=["set-null", "delete"],
            help="Repair orphans: set the reference to NULL, or delete the rows (through "
            "the ORM, so the source database's own cascades run).",
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
            type=_not_negative,
            default=1000,
            help="Refuse to repair more rows than this (default 1000): a mass of orphans "
            "usually means a restored or misrouted database, not deleted parents.",
        )
        parser.add_argument(
            "--partition",
            type=_partition,
            metavar="K/N",
            help="Check only part K (0 to N-1) of N disjoint key ranges of each link.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        labels = options["labels"]
        if options["dry_run"] and not options["fix"]:
            raise CommandError("--dry-run only makes sense with --fix.", returncode=2)
        try:
            links = select_links(labels, options["database"])
        except VerificationError as error:
            raise CommandError(str(error), returncode=2) from None
        fix = options["fix"]
        if fix == "set-null":
            not_nullable = [link_label(link) for link in links if not link.null]
            if not_nullable:
                raise CommandError(
                    f"--fix set-null cannot repair non-nullable links: "
                    f"{', '.join(not_nullable)}. Nothing was changed.",
                    returncode=2,
                )
        verifiers = [
            Verifier(
                link,
                batch_size=options["batch_size"],
                sample=options["sample"],
                partition=options["partition"],
                collect_limit=options["max_fix"] if fix else 0,
            )
            for link in links
        ]
        try:
            results = self._run(verifiers, options)
        except DatabaseError as error:
            raise CommandError(f"Could not run: {error}", returncode=2) from None
        if fix and any(r.orphans for r in results):
            results = self._repair(verifiers, results, options)
        self._report(results, options)
        if any(r.orphans for r in results):
            raise SystemExit(1)

    def _run(self, verifiers: list[Verifier], options: dict[str, Any]) -> list[LinkResult]:
        results = []
        for verifier in verifiers:
            try:
                verifier.progress = self._progress_bar(verifier, options)
                results.append(verifier.run())
            except DatabaseError as error:
                raise CommandError(
                    f"Could not verify {link_label(verifier.field)} (databases "
                    f"{verifier.source_db!r} -> {verifier.target_db!r}): {error}",
                    returncode=2,
                ) from None
            finally:
                if verifier.progress is not None:
                    self.stderr.write("")
        return results

    def _progress_bar(
        self, verifier: Verifier, options: dict[str, Any]
    ) -> Callable[[int], None] | None:
        if not (options["verbosity"] and sys.stderr.isatty()):
            return None
        total = verifier.estimated_total()
        started = time.monotonic()
        label = link_label(verifier.field)

        def show(done: int) -> None:
            rate = done / max(time.monotonic() - started, 1e-6)
            self.stderr.write(f"\r{label}: {done:,}/{total:,} rows ({rate:,.0f} rows/s)", ending="")

        return show

    def _repair(
        self, verifiers: list[Verifier], results: list[LinkResult], options: dict[str, Any]
    ) -> list[LinkResult]:
        fix, total = options["fix"], sum(r.orphans for r in results)
        action = "set to NULL" if fix == "set-null" else "deleted (with their cascades)"
        if total > options["max_fix"]:
            self._report(results, options)
            raise CommandError(
                f"{total} orphaned rows would be {action}, more than --max-fix "
                f"{options['max_fix']}. That many usually means a database was restored or "
                f"misrouted; check before raising --max-fix. Nothing was changed.",
                returncode=2,
            )
        if options["dry_run"]:
            self.stdout.write(f"Dry run: {total} orphaned row(s) would be {action}.")
            return results
        if options["interactive"]:
            answer = input(f"{total} orphaned row(s) will be {action}. Type 'yes' to continue: ")
            if answer != "yes":
                self.stdout.write("Repair cancelled; nothing was changed.")
                return results
        repaired = []
        for verifier, result in zip(verifiers, results, strict=True):
            if result.orphans:
                verifier.repair(result.repairable_keys, fix)
                result = verifier.run()  # what remains decides the exit status
            repaired.append(result)
        if options["verbosity"]:
            self.stdout.write(self.style.SUCCESS(f"Repaired: {total} row(s) {action}."))
        return repaired

    def _report(self, results: list[LinkResult], options: dict[str, Any]) -> None:
        report = document([r.as_dict() for r in results])
        pending, total = report["pending_propagations"], report["total_orphans"]
        if options["format"] == "json":
            self.stdout.write(json.dumps(report, indent=2))
            return
        if not options["verbosity"]:
            return
        for result in results:
            self._write_link(result, options)
        for row in pending:
            self.stdout.write(
                self.style.WARNING(
                    f"Pending propagation: {row['link']}: {row['keys']} deleted "
                    f"{row['target']} key(s) since {row['oldest']} in {row['database']!r} "
                    f"(run `manage.py propagate_deletions`)."
                )
            )
        with_orphans = sum(1 for r in results if r.orphans)
        summary = (
            f"{len(results)} link(s) checked, {sum(r.checked for r in results)} "
            f"reference(s), {total} orphan(s) in {with_orphans} link(s)."
        )
        style = self.style.ERROR if total else self.style.SUCCESS
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
