"""
Celery tasks: apply pending propagations; verify one partition of one link per
task, fan a verification out.

Optional: install the ``celery`` extra. Celery's ``autodiscover_tasks()`` finds
this module in the ``crossdb`` app. Workers need the same settings (and
database access) as the project.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from celery import chord, group, shared_task, signature

from crossdb import reports
from crossdb.propagation import older_than_seconds, propagate_pending
from crossdb.verification import (
    DEFAULT_BATCH_SIZE,
    Partition,
    Verifier,
    link_label,
    merge_reports,
    select_links,
)
from crossdb.verification.report import document


@shared_task(name="crossdb.propagate_deletions")
def propagate_deletions(
    databases: Sequence[str] | None = None, older_than: float = 0
) -> dict[str, Any]:
    """
    ``manage.py propagate_deletions`` as a task, for Celery beat: returns the
    command's JSON document. An unreachable database is reported in it
    (``unreachable``, ``error.kind == "unreachable"``), not raised.
    """
    clock = reports.Clock()
    seconds = older_than_seconds(older_than)
    result = propagate_pending(
        None if databases is None else list(databases), older_than=timedelta(seconds=seconds)
    )
    kind, status = (
        ("unreachable", 3) if result.unreachable else ("failed", 1) if result.failed else ("ok", 0)
    )
    message = (
        f"Database(s) unreachable: {', '.join(map(repr, result.unreachable))}."
        if result.unreachable
        else f"{result.failed} propagation(s) failed."
    )
    return reports.envelope(
        "crossdb.propagate_deletions",
        clock,
        databases=result.databases(),
        status=kind,
        exit_status=status,
        options={"databases": databases, "older_than_s": seconds},
        **result.as_dict(),
        error=reports.error_object(message, status, kind) if status else None,
    )


@shared_task(name="crossdb.verify_link_partition")
def verify_link_partition(
    label: str,
    index: int = 0,
    count: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sample: int = 10,
) -> dict[str, Any]:
    """Verify part ``index`` of ``count`` of the link ``app_label.Model.field``."""
    [link] = select_links([label])
    verifier = Verifier(
        link, batch_size=batch_size, sample=sample, partition=Partition(index, count)
    )
    return verifier.run().as_dict()


@shared_task(name="crossdb.merge_reports")
def merge_partition_reports(parts: list[dict[str, Any]], sample: int = 10) -> dict[str, Any]:
    """Merge partition reports into ``verify_links --format json``'s document."""
    return document(merge_reports(parts, sample)["links"])


def verification_chord(
    labels: Sequence[str] = (),
    *,
    partitions: int = 4,
    database: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sample: int = 10,
) -> Any:
    """
    A Celery chord verifying the selected links, ``partitions`` tasks per link,
    whose callback ``crossdb.merge_reports`` returns the merged document. Chain
    your own task to it to act on the report without waiting in a task::

        (verification_chord(partitions=8) | alert_ops.s()).apply_async()
    """
    header = _partition_tasks(labels, partitions, database, batch_size, sample)
    return chord(header, merge_partition_reports.s(sample=sample))


def _partition_tasks(
    labels: Sequence[str], partitions: int, database: str | None, batch_size: int, sample: int
) -> list[Any]:
    return [
        verify_link_partition.s(link_label(link), index, partitions, batch_size, sample)
        for link in select_links(labels, database)
        for index in range(partitions)
    ]


@shared_task(name="crossdb.start_verification")
def start_verification(
    labels: Sequence[str] = (),
    partitions: int = 4,
    database: str | None = None,
    callback: str | None = None,
) -> str:
    """
    For Celery beat: start a verification without waiting for it, so it runs on
    any worker (no ``result.get()`` inside a task). ``callback`` names a task that
    receives the merged report; the returned id is the callback's (or, without
    one, the merge's), whose result is the callback's return value (or the report).
    """
    job = verification_chord(labels, partitions=partitions, database=database)
    if callback:
        job = job | signature(callback)
    return str(job.apply_async().id)


def verify_links_in_parallel(
    labels: Sequence[str] = (),
    *,
    partitions: int = 4,
    database: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sample: int = 10,
    timeout: float | None = None,
) -> dict[str, Any]:
    """
    Verify the selected links on a Celery cluster, ``partitions`` tasks per link,
    and merge the results into ``verify_links --format json``'s document.

    It waits for the results, so call it from a command or a script, not from
    inside a task (Celery forbids that): there, use ``verification_chord()``.
    """
    parts = group(_partition_tasks(labels, partitions, database, batch_size, sample))
    report: dict[str, Any] = merge_partition_reports(
        parts.apply_async().get(timeout=timeout), sample
    )
    return report
