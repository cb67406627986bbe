"""
Celery tasks: verify one partition of one link per task, fan a verification out.

Optional: install the ``celery`` extra. Celery's ``autodiscover_tasks()`` finds
this module in the ``crossdb`` app. Workers need the same settings (and
database access) as the project.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import group, shared_task

from crossdb.verification import (
    Partition,
    Verifier,
    link_label,
    merge_reports,
    pending_propagations,
    select_links,
)


@shared_task(name="crossdb.verify_link_partition")
def verify_link_partition(
    label: str, index: int = 0, count: int = 1, batch_size: int = 1000, sample: int = 10
) -> dict[str, Any]:
    """Verify part ``index`` of ``count`` of the link ``app_label.Model.field``."""
    [link] = select_links([label])
    verifier = Verifier(
        link, batch_size=batch_size, sample=sample, partition=Partition(index, count)
    )
    return verifier.run().as_dict()


def verify_links_in_parallel(
    labels: Sequence[str] = (),
    *,
    partitions: int = 4,
    database: str | None = None,
    batch_size: int = 1000,
    sample: int = 10,
    timeout: float | None = None,
) -> dict[str, Any]:
    """
    Verify the selected links on a Celery cluster, ``partitions`` tasks per link,
    and merge the results into ``verify_links --format json``'s document.
    """
    links = select_links(labels, database)
    job = group(
        verify_link_partition.s(link_label(link), index, partitions, batch_size, sample)
        for link in links
        for index in range(partitions)
    )
    parts = job.apply_async().get(timeout=timeout) if links else []
    labels_seen = {link_label(link) for link in links}
    report = merge_reports(parts, sample)
    report["pending_propagations"] = [
        row for row in pending_propagations() if row["link"] in labels_seen
    ]
    return report
