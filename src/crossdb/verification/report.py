"""
What a verification reports: each link's result, the deletions still to
propagate, partitions' documents merged, and ``verify_links --format json``'s
document (also what the Celery tasks return).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime, timezone
from typing import Any

from django.db import connections
from django.db.models import Count, Min
from django.utils import timezone as django_timezone

from crossdb import capture, reports
from crossdb.capture_queue import BATCH, key_count
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


# Each database's table list, read once per verify_links run (see remembered_tables()).
_tables: dict[str, frozenset[str]] | None = None


@contextmanager
def remembered_tables() -> Iterator[None]:
    """
    Within the block (one ``verify_links`` run), read each database's table list
    once: every link asks whether crossdb's tables are migrated where it looks,
    and a run does not migrate. Outside it, every question reads the list anew.
    """
    global _tables
    outer, _tables = _tables, ({} if _tables is None else _tables)
    try:
        yield
    finally:
        _tables = outer


def _table_names(alias: str) -> frozenset[str]:
    if _tables is not None and alias in _tables:
        return _tables[alias]
    with connections[alias].cursor() as cursor:
        names = frozenset(connections[alias].introspection.table_names(cursor))
    if _tables is not None:
        _tables[alias] = names
    return names


def has_pending_table(alias: str) -> bool:
    """Whether crossdb's table is migrated on ``alias``; an unreachable database raises."""
    from crossdb.models import PendingPropagation

    return PendingPropagation._meta.db_table in _table_names(alias)


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


def has_capture_table(alias: str) -> bool:
    """Whether ``crossdb.CapturedDeletion``'s table is migrated on ``alias``."""
    from crossdb.models import CapturedDeletion

    return CapturedDeletion._meta.db_table in _table_names(alias)


def _queue_by_link(
    aliases: Iterable[str], links: Iterable[str], kind: str, ids: Collection[int] | None = None
) -> Iterator[tuple[str, str, int, datetime]]:
    """
    ``(database, link, rows, oldest)`` of the ``CapturedDeletion`` rows of ``kind``;
    for ``delete``, ``rows`` counts the keys of PostgreSQL's batch rows too.
    """
    from crossdb.models import CapturedDeletion

    for alias in sorted(set(aliases)):
        if not has_capture_table(alias):
            continue
        kinds, count = [kind], Count("pk")
        if kind == "delete":  # and PostgreSQL's batches of them, by their keys
            kinds, count = [kind, BATCH], key_count(alias)
        rows = CapturedDeletion.objects.using(alias).filter(
            kind__in=kinds, link__in=sorted(set(links))
        )
        if ids is not None:
            rows = rows.filter(pk__in=list(ids))
        grouped = rows.values("link").annotate(count=count, oldest=Min("created_at"))
        for row in grouped.order_by("link"):
            yield alias, row["link"], row["count"], row["oldest"]


def captured_deletions(aliases: Iterable[str], links: Iterable[str]) -> list[dict[str, Any]]:
    """
    The captured deletions of ``links`` queued in ``aliases`` (the triggers' rows, not
    yet applied), one entry per link and database: ``rows`` and the ``oldest``'s age.
    """
    now = django_timezone.now()  # naive without USE_TZ, as created_at is
    return [
        {
            "database": alias,
            "link": link,
            "rows": count,
            "oldest": oldest.isoformat(),
            "oldest_age_s": round((now - oldest).total_seconds(), 3),
        }
        for alias, link, count, oldest in _queue_by_link(aliases, links, "delete")
    ]


def truncations(
    aliases: Iterable[str], links: Iterable[str], ids: Collection[int] | None = None
) -> list[dict[str, Any]]:
    """
    The ``truncate`` markers of ``links`` in ``aliases`` (those of ``ids`` if given):
    the target table was emptied, the deleted keys are unknown. ``cleared`` is how
    many of them a complete run of the link reconciled (``verify_links`` sets it).
    """
    return [
        {
            "database": alias,
            "link": link,
            "markers": count,
            "first": first.isoformat(),
            "cleared": 0,
        }
        for alias, link, count, first in _queue_by_link(aliases, links, "truncate", ids)
    ]


def truncation_markers_seen(field: CrossDBForeignKey, alias: str) -> list[int]:
    """
    The ids of the link's truncate markers in ``alias`` now, read before its scan:
    each is a truncation committed before the scan began, so a complete scan sees
    what it left. (Ids, not times: a database's clock and the application's differ.)
    """
    from crossdb.models import CapturedDeletion

    if not (field.capture_deletes and has_capture_table(alias)):
        return []
    markers = CapturedDeletion.objects.using(alias).filter(
        kind="truncate", link=capture.link_label(field)
    )
    return list(markers.values_list("pk", flat=True))


def reconcile_truncations(
    results: Iterable[LinkResult], seen: dict[str, list[int]] | None
) -> list[dict[str, Any]]:
    """
    The truncate markers of the captured links in ``results``. ``seen``: for a run
    that saw every reference (not a --partition part, not a --dry-run, not
    --incremental), the markers each link had before its scan began
    (``truncation_markers_seen``): a complete scan clears exactly those (check
    crossdb.W042 goes quiet) and reports them; a marker written since stays for
    the next run. Without ``seen``, every marker is reported and none cleared.
    """
    from crossdb.capture import clear_truncation_markers

    found: list[dict[str, Any]] = []
    for result in results:
        if not result.field.capture_deletes:
            continue
        label, alias = capture.link_label(result.field), result.target_database
        if seen is None:
            found += truncations([alias], [label])
            continue
        ids = seen.get(label, [])
        markers = truncations([alias], [label], ids) if ids else []
        if result.complete and markers:
            markers[0]["cleared"] = clear_truncation_markers(label, alias, ids=ids)
        found += markers
    return found


def truncation_line(row: dict[str, Any]) -> str:
    """verify_links' text line for an entry of ``truncations()``."""
    done = f"{row['cleared']} marker(s) cleared by this complete run"
    return (
        f"Truncated: the target table of {row['link']} was emptied in {row['database']!r} "
        f"({row['markers']} time(s) since {row['first']}): its keys are unknown, the orphans "
        f"above are what it left; "
        + (
            done
            if row["cleared"]
            else "a run without --partition, --dry-run or --incremental clears it"
        )
        + "."
    )


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
    queues: dict[str, dict[tuple[str, str], dict[str, Any]]] = {
        "captured_deletions": {},
        "truncations": {},
    }
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
        for name, rows in queues.items():
            for row in part.get(name, ()):
                rows[(row["database"], row["link"])] = row
    return document(
        [merged[key] for key in sorted(merged)],
        list(pending.values()),
        captured=list(queues["captured_deletions"].values()),
        truncated=list(queues["truncations"].values()),
    )


SCHEMA_VERSION = reports.SCHEMA_VERSION


def document(
    links: list[dict[str, Any]],
    pending: list[dict[str, Any]] | None = None,
    *,
    not_checked: Sequence[dict[str, Any]] = (),
    error: dict[str, Any] | None = None,
    started_at: datetime | None = None,
    databases: Iterable[str] = (),
    captured: list[dict[str, Any]] | None = None,
    truncated: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """
    ``verify_links --format json``'s document (also what the Celery tasks
    return) for these links' entries (``LinkResult.as_dict()``), in the
    ``envelope()``. ``pending``: the deletions still to propagate to them, read
    from the links' databases when not given. ``not_checked``: the links that
    could not be checked, each with its ``error``; ``error``: why the run failed.
    ``captured`` and ``truncated``: the links' captured deletions still queued and
    truncate markers, read like ``pending`` when it is.
    """
    if pending is None:
        labels = {f"{link['model']}.{link['field']}" for link in links}
        aliases = {link[key] for link in links for key in ("database", "target_database")}
        pending = [row for row in pending_propagations(aliases) if row["link"] in labels]
        # Only captured links have a queue: the others cost no query.
        queued = labels & {capture.link_label(field) for field in capture.captured_links()}
        targets = {link["target_database"] for link in links} if queued else set()
        if captured is None:
            captured = captured_deletions(targets, queued)
        if truncated is None:
            truncated = truncations(targets, queued)
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
        "captured_deletions": captured or [],
        "truncations": truncated or [],
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
