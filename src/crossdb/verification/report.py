"""
What a verification reports: each link's result, the deletions still to
propagate, partitions' documents merged, and ``verify_links --format json``'s
document (also what the Celery tasks return).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from django.db import connections

from crossdb.fields import CrossDBForeignKey


@dataclass
class LinkResult:
    field: CrossDBForeignKey
    database: str
    target_database: str
    checked: int = 0
    orphans: int = 0
    sample: list[Any] = dataclass_field(default_factory=list)
    pending: int = 0
    complete: bool = True
    repairable_keys: list[Any] = dataclass_field(default_factory=list)
    repaired: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.field.model._meta.label,
            "field": self.field.name,
            "database": self.database,
            "target": self.field.remote_field.model._meta.label,
            "target_database": self.target_database,
            "checked": self.checked,
            "orphans": self.orphans,
            "pending": self.pending,
            "sample": [_json_value(key) for key in self.sample],
        }


def _json_value(value: Any) -> Any:
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


def has_pending_table(alias: str) -> bool:
    """Whether crossdb's table is migrated on ``alias``; an unreachable database raises."""
    from crossdb.models import PendingPropagation

    with connections[alias].cursor() as cursor:
        tables = connections[alias].introspection.table_names(cursor)
    return PendingPropagation._meta.db_table in tables


def pending_propagations() -> list[dict[str, Any]]:
    """One entry per link and database with deletions still to propagate."""
    from crossdb.models import PendingPropagation

    found: list[dict[str, Any]] = []
    for alias in connections:
        if not has_pending_table(alias):
            continue
        rows = list(PendingPropagation.objects.using(alias).order_by("id"))
        grouped: dict[tuple[str, str], list[Any]] = {}
        for row in rows:
            grouped.setdefault(
                (f"{row.source_model}.{row.source_field}", row.target_model), []
            ).append(row)
        for (link, target), group in grouped.items():
            found.append(
                {
                    "database": alias,
                    "link": link,
                    "target": target,
                    "rows": len(group),
                    "keys": sum(len(row.keys) for row in group),
                    "oldest": group[0].created_at.isoformat(),
                }
            )
    return found


def merge_reports(parts: Iterable[dict[str, Any]], sample: int = 10) -> dict[str, Any]:
    """
    Merge the JSON documents (or their ``links`` lists) of ``--partition`` runs.

    The parts of one link cover disjoint ranges of its keys or of its primary
    key, so the counts (of rows) add up; with primary key ranges a key may have
    rows in several parts, so the samples are unions (distinct keys, at most
    ``sample``, in the parts' order: the order of one whole run).
    """
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    pending: dict[tuple[str, str], dict[str, Any]] = {}
    for part in parts:
        links = part.get("links", [part])
        for link in links:
            key = (link["model"], link["field"])
            into = merged.setdefault(
                key, {**link, "checked": 0, "orphans": 0, "pending": 0, "sample": []}
            )
            for count in ("checked", "orphans", "pending"):
                into[count] += link.get(count, 0)
            for value in link["sample"]:
                if value not in into["sample"] and len(into["sample"]) < sample:
                    into["sample"].append(value)
        for row in part.get("pending_propagations", ()):
            pending[(row["database"], row["link"])] = row
    return document([merged[key] for key in sorted(merged)], list(pending.values()))


def document(
    links: list[dict[str, Any]], pending: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """
    ``verify_links --format json``'s document (also what the Celery tasks
    return) for these links' entries (``LinkResult.as_dict()``). ``pending``:
    the deletions still to propagate to them, read from every database when
    not given.
    """
    if pending is None:
        labels = {f"{link['model']}.{link['field']}" for link in links}
        pending = [row for row in pending_propagations() if row["link"] in labels]
    return {
        "total_orphans": sum(link["orphans"] for link in links),
        "links": links,
        "pending_propagations": pending,
    }
