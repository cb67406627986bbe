"""
Finding (and repairing) references whose target row does not exist: the engine
of ``manage.py verify_links``, of the database-tagged system check and of the
Celery tasks.

- ``links``: which links a run covers (labels, ``--database``, ``--partition``);
- ``engine``: ``Verifier``, which pages the source, probes the target and repairs;
- ``report``: results, pending propagations, merged partitions, the JSON document;
- ``compiled``: the queries compiled once that the engine runs page after page.
"""

from crossdb.verification.engine import (
    DEFAULT_BATCH_SIZE,
    DENSE_SPAN,
    RECHECK_BATCH_SIZE,
    Verifier,
    pages_by_key,
)
from crossdb.verification.links import (
    Partition,
    PartitionError,
    VerificationError,
    all_links,
    link_label,
    select_links,
)
from crossdb.verification.report import LinkResult, merge_reports, pending_propagations

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DENSE_SPAN",
    "RECHECK_BATCH_SIZE",
    "LinkResult",
    "Partition",
    "PartitionError",
    "VerificationError",
    "Verifier",
    "all_links",
    "link_label",
    "merge_reports",
    "pages_by_key",
    "pending_propagations",
    "select_links",
]
