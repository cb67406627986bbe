"""
Which links a verification covers: selecting them by label or database, naming
them, and ``--partition K/N``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import connections

from crossdb import routers
from crossdb.fields import CrossDBForeignKey


class VerificationError(Exception):
    """Verification could not run (an unknown label, alias or partition)."""

    def __init__(self, message: str, **about: Any) -> None:
        super().__init__(message)
        # What the error is about, for a report: ``label=``, ``alias=`` or ``option=``.
        self.about = about


class PartitionError(VerificationError, ValueError):
    """An invalid ``K/N`` partition."""


def link_label(field: CrossDBForeignKey) -> str:
    return f"{field.model._meta.label}.{field.name}"


def all_links() -> list[CrossDBForeignKey]:
    """Every cross-database field of every installed model, in a stable order."""
    found = [
        field
        for model in apps.get_models()
        for field in model._meta.local_fields
        if isinstance(field, CrossDBForeignKey)
    ]
    return sorted(found, key=link_label)


def select_links(
    labels: Sequence[str] = (), database: str | None = None
) -> list[CrossDBForeignKey]:
    """
    The links named by ``labels`` (``app_label``, ``app_label.Model`` or
    ``app_label.Model.field``; none means all), stored in ``database`` if given.
    """
    if database is not None and database not in connections.settings:
        raise VerificationError(f"Unknown database {database!r}.", alias=database)
    links = all_links()
    if labels:
        chosen: dict[str, CrossDBForeignKey] = {}
        for label in labels:
            matched = [link for link in links if _matches(link, label)]
            if not matched:
                raise VerificationError(
                    f"{label!r} names no cross-database link. Use app_label, "
                    f"app_label.Model or app_label.Model.field; links: "
                    f"{', '.join(link_label(link) for link in links) or 'none'}.",
                    label=label,
                )
            chosen.update((link_label(link), link) for link in matched)
        links = [chosen[key] for key in sorted(chosen)]
    if database is not None:
        links = [link for link in links if routers.source_db_for_read(link) == database]
    return links


def _matches(link: CrossDBForeignKey, label: str) -> bool:
    parts = label.split(".")
    opts = link.model._meta
    if len(parts) == 1:
        return bool(opts.app_label == parts[0])
    same_model = opts.app_label == parts[0] and opts.model_name == parts[1].lower()
    if len(parts) == 2:
        return bool(same_model)
    return bool(same_model and len(parts) == 3 and link.name == parts[2])


@dataclass
class Partition:
    """Part ``index`` (0-based) of ``count`` disjoint primary key ranges."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Partition:
        """Parse ``K/N``; raises ValueError, which argparse reports as a usage error."""
        try:
            index_text, count_text = text.split("/")
            index, count = int(index_text), int(count_text)
        except ValueError:
            raise PartitionError(f"--partition takes K/N, e.g. 0/4, not {text!r}.") from None
        if count < 1 or not 0 <= index < count:
            raise PartitionError(
                f"--partition {text}: K must be 0 to N-1 and N at least 1 (e.g. 0/4 ... 3/4)."
            )
        return cls(index, count)
