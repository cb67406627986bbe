"""
Database checks of deletion capture (tagged ``database``: ``check --database``,
``migrate --database``), ``crossdb.W040``-``W044``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core import checks
from django.db import connections
from django.db.models import Count, Min
from django.utils import timezone

from crossdb.capture import captured_links, link_label, out_of_date_links
from crossdb.capture_log_sql import LOG_TABLE, logged_links, missing_log_links
from crossdb.capture_queue import BATCH, key_count
from crossdb.capture_sql import QUEUE_TABLE
from crossdb.conf import capture_settings


@checks.register(checks.Tags.database)
def check_capture(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    for alias in databases or ():
        connection = connections[alias]
        with connection.cursor() as cursor:
            if QUEUE_TABLE not in connection.introspection.table_names(cursor):
                continue
        messages += _missing(alias)
        messages += _binary_log(alias)
        messages += _truncated(alias)
        messages += _pending_age(alias)
    return messages


def _missing(alias: str) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    for field, stale in out_of_date_links(alias):
        target = field.remote_field.model._meta
        if stale:
            problem = (
                f"The capture trigger of {link_label(field)} in database {alias!r} is for "
                f"another table or key column than {target.db_table}."
                f"{field.target_field.column}: deletions of {target.label} there are not "
                f"captured (or every one fails). (A migration renamed them.)"
            )
        else:
            problem = (
                f"The capture trigger of {link_label(field)} is missing from database "
                f"{alias!r}: deletions of {target.label} there are not captured. (SQLite "
                f"drops a table's triggers when a migration rebuilds it.)"
            )
        messages.append(
            checks.Warning(
                problem,
                hint=f"Run `manage.py migrate --database {alias}`: it puts the triggers back.",
                obj=field,
                id="crossdb.W040",
            )
        )
    return messages


def _binary_log(alias: str) -> list[checks.CheckMessage]:
    connection = connections[alias]
    if connection.vendor != "mysql" or not captured_links(alias):
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@log_bin, @@log_bin_trust_function_creators")
        log_bin, trusted = cursor.fetchone()
    if not int(log_bin) or int(trusted):
        return []
    return [
        checks.Warning(
            f"Binary logging is on in database {alias!r} and log_bin_trust_function_creators "
            f"is off: creating the capture triggers needs the SUPER privilege.",
            hint="Run `SET GLOBAL log_bin_trust_function_creators = 1` (or set it in the "
            "server's configuration), or migrate as a user with SUPER.",
            obj=alias,
            id="crossdb.W041",
        )
    ]


def _truncated(alias: str) -> list[checks.CheckMessage]:
    from crossdb.models import CapturedDeletion

    markers = (
        CapturedDeletion.objects.using(alias)
        .filter(kind="truncate")
        .values("link")
        .annotate(count=Count("pk"), first=Min("created_at"))
        .order_by("link")
    )
    return [
        checks.Warning(
            f"The target table of {row['link']} was truncated in database {alias!r} "
            f"({row['count']} time(s) since {row['first']:%Y-%m-%d %H:%M:%S}): the deleted "
            f"keys are unknown, so their on_delete was not applied.",
            hint=f"Run `manage.py verify_links {row['link']}` (add --fix to repair): a "
            f"complete run (no --partition, --dry-run or --incremental) reports what the "
            f"truncation left and clears these markers.",
            obj=row["link"],
            id="crossdb.W042",
        )
        for row in markers
    ]


def _pending_age(alias: str) -> list[checks.CheckMessage]:
    from crossdb.models import CapturedDeletion, PendingPropagation

    limit = capture_settings.PENDING_WARN_AGE
    if limit is None:
        return []
    cutoff = timezone.now() - timedelta(seconds=limit)
    messages: list[checks.CheckMessage] = []
    for model, rows, count in (
        (PendingPropagation, PendingPropagation.objects.using(alias), Count("pk")),
        (
            CapturedDeletion,
            CapturedDeletion.objects.using(alias).filter(kind__in=("delete", BATCH)),
            key_count(alias),  # keys, whether a row holds one or a batch
        ),
    ):
        late = rows.filter(created_at__lt=cutoff).aggregate(count=count, oldest=Min("created_at"))
        if not late["count"]:
            continue
        age = (timezone.now() - late["oldest"]).total_seconds()
        messages.append(
            checks.Warning(
                f"{late['count']} {model._meta.verbose_name}(s) in database {alias!r} are older "
                f"than CROSSDB_PENDING_WARN_AGE={limit:g} seconds; the oldest is {age:.0f} "
                f"seconds old.",
                hint=f"Run `manage.py propagate_deletions --database {alias}`; rows that stay "
                f"say why in last_error.",
                obj=model._meta.label,
                id="crossdb.W043",
            )
        )
    return messages


@checks.register(checks.Tags.database)
def check_log_triggers(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """``crossdb.W044``: a captured link written in a database without its log trigger."""
    messages: list[checks.CheckMessage] = []
    for alias in databases or ():
        if not (links := logged_links(alias)):
            continue
        connection = connections[alias]
        with connection.cursor() as cursor:
            migrated = LOG_TABLE in connection.introspection.table_names(cursor)
        for field in missing_log_links(alias) if migrated else links:
            messages.append(
                checks.Warning(
                    f"The trigger logging written references of {link_label(field)} is "
                    f"missing from database {alias!r}: `verify_links --incremental` does not "
                    f"see the references written there.",
                    hint=f"Run `manage.py migrate --database {alias}`: it installs the trigger"
                    + ("." if migrated else f" and crossdb's table {LOG_TABLE}."),
                    obj=field,
                    id="crossdb.W044",
                )
            )
    return messages
