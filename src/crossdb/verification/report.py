"""
What a verification reports: each link's result, the deletions still to
propagate, partitions' documents merged, and ``verify_links --format json``'s
document (also what the Celery tasks return).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime, timezone
from typing import Any

from django.db import connections

from crossdb import reports
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


def pending_propagations(aliases: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """
    One entry per link and database with deletions still to propagate, recorded
    in ``aliases`` (every database by default).
    """
    from crossdb.models import PendingPropagation

    found: list[dict[str, Any]] = []
    for alias in connections if aliases is None else sorted(set(aliases)):
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


SCHEMA_VERSION = reports.SCHEMA_VERSION


def document(
    links: list[dict[str, Any]],
    pending: list[dict[str, Any]] | None = None,
    *,
    not_checked: Sequence[dict[str, Any]] = (),
    error: dict[str, Any] | None = None,
    started_at: datetime | None = None,
    databases: Iterable[str] = (),
) -> dict[str, Any]:
    """
    ``verify_links --format json``'s document (also what the Celery tasks
    return) for these links' entries (``LinkResult.as_dict()``), in the
    ``envelope()``. ``pending``: the deletions still to propagate to them, read
    from the links' databases when not given. ``not_checked``: the links that
    could not be checked, each with its ``error``; ``error``: why the run failed.
    """
    if pending is None:
        labels = {f"{link['model']}.{link['field']}" for link in links}
        aliases = {link[key] for link in links for key in ("database", "target_database")}
        pending = [row for row in pending_propagations(aliases) if row["link"] in labels]
    involved = {
        *databases,
        *(link[key] for link in (*links, *not_checked) for key in ("database", "target_database")),
    }
    return {
        **envelope(started_at, involved),
        "total_orphans": sum(link["orphans"] for link in links),
        "links": links,
        "not_checked": list(not_checked),
        "pending_propagations": pending,
        "error": error,
    }


def envelope(started_at: datetime | None, databases: Iterable[str]) -> dict[str, Any]:
    """
    What every report carries: its schema's version, when it ran (ISO 8601,
    UTC; ``started_at`` defaults to now), the versions of crossdb and Django,
    and the database aliases involved.
    """
    finished_at = datetime.now(timezone.utc)
    started_at = started_at or finished_at
    return {
        "schema_version": SCHEMA_VERSION,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "duration_s": round((finished_at - started_at).total_seconds(), 3),
        "versions": reports.versions(),
        "databases": sorted(databases),
    }
