"""
``verify_links --incremental``: checking only the references written since the
previous runs, as logged by the triggers of ``crossdb.capture_log_sql`` in
``crossdb.WrittenReference`` (links with ``capture_deletes=True``).

A run reads the link's log in id order, a page at a time, reads the current
key of each logged source row (one query per page: later updates, NULLs and
deleted rows are then right), and checks the keys as the full scan does
(``Verifier.probe``, a second probe before an orphan is reported, pending
propagations). Only once a page's check has finished does it write the log:

- a row checked for the first time gets ``first_checked_at`` (database time);
- a row first checked at least ``CROSSDB_INCREMENTAL_RECHECK_DELAY`` seconds
  before this check is deleted: that second check catches a reference written
  while its target's deletion was not yet committed, which the first check (and
  every deletion-side mechanism) saw as alive;
- a row whose source row is gone or holds NULL is deleted: nothing refers;
- a row whose target is missing stays, so every run reports it until repaired.

One UPDATE and one DELETE per page at most. A process killed mid-run has
deleted only rows it had checked: the next run checks the others.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Generator, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from django.db import models
from django.db.models.functions import Now

from crossdb.batching import by_keys
from crossdb.conf import capture_settings
from crossdb.fields import CrossDBForeignKey
from crossdb.verification.engine import Verifier
from crossdb.verification.links import Partition, VerificationError, link_label
from crossdb.verification.report import LinkResult


@dataclass
class IncrementalResult(LinkResult):
    logged: int = 0  # log rows read by the run
    awaiting_recheck: int = 0  # log rows left for a later run (checked once, or orphans)

    def as_dict(self) -> dict[str, Any]:
        return {
            **super().as_dict(),
            "mode": "incremental",
            "logged": self.logged,
            "awaiting_recheck": self.awaiting_recheck,
        }


class IncrementalVerifier(Verifier):
    """Checks the references of one link logged since the previous runs; see the module."""

    def __init__(self, field: CrossDBForeignKey, *, delay: float | None = None, **kwargs: Any):
        if not field.capture_deletes:
            raise VerificationError(
                f"{link_label(field)} has no capture_deletes=True, so its written references "
                f"are not logged: run a full `manage.py verify_links {link_label(field)}`.",
                label=link_label(field),
            )
        super().__init__(field, **kwargs)
        self.label = link_label(field)
        self.delay = capture_settings.INCREMENTAL_RECHECK_DELAY if delay is None else delay
        self.logged = 0
        # The target keys the probes of the current page found (see probe()).
        self._found: set[Any] = set()

    def estimated_total(self) -> int | None:
        return None  # the log's length is not worth a COUNT before the run

    def log(self) -> models.QuerySet[Any]:
        from crossdb.models import WrittenReference

        log = WrittenReference.objects.using(self.source_db).filter(link=self.label)
        return log  # type: ignore[no-any-return]

    def probe(self, keys: Sequence[Any], bounds: tuple[Any, Any] | None = None) -> set[Any]:
        # Verifier.run() probes each page, and re-probes its suspects, between two
        # steps of pages(): what they found tells _settle() which keys are alive.
        found = super().probe(keys, bounds)
        self._found |= found
        return found

    def run(self) -> IncrementalResult:
        self.logged = 0
        result = super().run()
        values = {f.name: getattr(result, f.name) for f in fields(LinkResult)}
        return IncrementalResult(**values, logged=self.logged, awaiting_recheck=self.log().count())

    def pages(self) -> Generator[dict[Any, int], None, None]:
        """``{key: logged rows holding it}`` for each page of the log, in id order."""
        rows = self.log().order_by("id").values_list("id", "source_pk", "first_checked_at")
        # The database's clock, read once: comparing each row to ``Now() - delay`` in
        # SQL costs a call into Python per row on SQLite.
        now = self.log().annotate(now=Now()).values_list("now", flat=True).first()
        if now is None:
            return  # nothing logged
        cutoff = now - timedelta(seconds=self.delay)
        to_python = self.field.model._meta.pk.to_python
        last = 0
        while True:
            page_rows = list(rows.filter(id__gt=last)[: self.batch_size])
            if not page_rows:
                return
            last = page_rows[-1][0]
            self.logged += len(page_rows)
            logged = [(row_id, to_python(pk), checked) for row_id, pk, checked in page_rows]
            keys = self._current_keys({pk for _, pk, _ in logged})
            page = Counter(keys[pk] for _, pk, _ in logged if pk in keys)
            self._found = set()
            if page:
                # Keys in order, as Verifier.run() expects when it probes a range.
                yield dict(sorted(page.items())) if self.pages_by_key else page
            self._settle(logged, keys, {k for k in page if k not in self._found}, cutoff)
            if len(page_rows) < self.batch_size:
                return

    def _current_keys(self, pks: Collection[Any]) -> dict[Any, Any]:
        """``{primary key: key}`` of the logged source rows that exist and hold a key."""
        manager = self.field.model._base_manager.using(self.source_db)
        rows = manager.filter(**{f"{self.field.attname}__isnull": False})
        found: dict[Any, Any] = {}
        for chunk in by_keys(rows.values_list("pk", self.field.attname), "pk", list(pks)):
            found.update(chunk)
        return found

    def _settle(
        self,
        logged: Sequence[tuple[int, Any, datetime | None]],
        keys: dict[Any, Any],
        missing: Collection[Any],
        cutoff: datetime,
    ) -> None:
        """Mark the page's rows checked once, forget those checked twice (see the module)."""
        first: list[int] = []
        done: list[int] = []
        for row_id, pk, checked_at in logged:
            key = keys.get(pk)
            due = checked_at is not None and checked_at <= cutoff
            if key is None or (due and key not in missing):
                done.append(row_id)
            elif checked_at is None:
                first.append(row_id)
        # By id alone (ids are unique across links): the primary key finds the rows.
        rows = self.log().model.objects.using(self.source_db)
        for queryset in by_keys(rows.filter(first_checked_at__isnull=True), "id", first):
            queryset.update(first_checked_at=Now())
        for queryset in by_keys(rows, "id", done):
            queryset.delete()


def split_logged(
    links: Sequence[CrossDBForeignKey], partition: Partition | None = None
) -> tuple[list[CrossDBForeignKey], list[str]]:
    """
    The links an incremental run checks (``capture_deletes=True``) and the labels
    of those it skips; a VerificationError when none is left or with a partition.
    """
    if partition is not None:
        raise VerificationError(
            "--partition cannot be combined with --incremental, which reads only the logged "
            "references.",
            option="--partition",
        )
    logged = [link for link in links if link.capture_deletes]
    if not logged:
        raise VerificationError(
            "--incremental: none of the selected links has capture_deletes=True, so no "
            "written reference is logged; run a full verify_links.",
            option="--incremental",
        )
    return logged, [link_label(link) for link in links if not link.capture_deletes]
