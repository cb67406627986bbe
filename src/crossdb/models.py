"""The tables of this app: deletions whose effects are still to be applied elsewhere, and
references written since the last incremental verification."""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class PendingPropagation(models.Model):
    """
    "These targets were deleted; apply ``source_model.source_field``'s on_delete."

    Written in the target's database in the same transaction as the deletion
    and removed once the policy has been applied in the source's database and
    that has committed, so a process that dies in between leaves a row to
    finish the job from.

    A runner claims a row before applying it: ``claim_token`` names the runner
    and ``claimed_until`` ends its lease, so two runners never apply one row at
    the same time and a runner that died gives the row back when its lease
    ends. The rows of one deletion share a ``deletion_group``; ``lifted_json``
    lists the rows (``[alias, model label, pk]``) whose ``RESTRICT`` that
    deletion lifted because it removes them too.
    """

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    source_model = models.CharField(max_length=200)
    source_field = models.CharField(max_length=100)
    target_model = models.CharField(max_length=200)
    keys_json = models.TextField()
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    deletion_group = models.CharField(max_length=32, blank=True, default="")
    lifted_json = models.TextField(blank=True, default="[]")
    claim_token = models.CharField(max_length=32, blank=True, default="")
    claimed_until = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "pending propagation"

    def __str__(self) -> str:
        return (
            f"{self.source_model}.{self.source_field}: {len(self.keys)} deleted "
            f"{self.target_model} key(s)"
        )

    @property
    def keys(self) -> list[Any]:
        return list(json.loads(self.keys_json))

    @keys.setter
    def keys(self, value: list[Any]) -> None:
        self.keys_json = json.dumps(list(value), cls=DjangoJSONEncoder)

    @property
    def lifted(self) -> frozenset[tuple[str, str, Any]]:
        return frozenset(tuple(row) for row in json.loads(self.lifted_json or "[]"))

    @lifted.setter
    def lifted(self, value: frozenset[tuple[str, str, Any]]) -> None:
        self.lifted_json = json.dumps(sorted(value, key=repr), cls=DjangoJSONEncoder)


class ExactTextField(models.TextField):  # type: ignore[type-arg]
    """Text compared byte for byte: a binary, no-pad collation on MySQL/MariaDB."""

    def db_type(self, connection: Any) -> str | None:
        if connection.vendor == "mysql":
            collation = "utf8mb4_nopad_bin" if connection.mysql_is_mariadb else "utf8mb4_0900_bin"
            return f"longtext CHARACTER SET utf8mb4 COLLATE {collation}"
        return super().db_type(connection)


class CapturedDeletion(models.Model):
    """
    One deleted target key of a link with ``capture_deletes=True``, written by a
    trigger on the target's table, in the deleting transaction, whoever deleted it.

    ``link`` is ``app_label.Model.field``; ``target_key`` the key as text (cast by
    the database; ``to_python()`` reads it back); ``kind`` is ``delete``, or
    ``truncate`` for a marker saying the whole table was emptied (PostgreSQL's
    ``TRUNCATE``), which no key-by-key propagation can follow, or ``batch`` on
    PostgreSQL: the keys one DELETE statement removed, as a JSON array of texts,
    turned into ``delete`` rows before they are claimed
    (``crossdb.capture_queue.expand_batches``). Claimed and applied like
    ``PendingPropagation`` (``claim_token``, ``claimed_until``), then deleted.

    The primary key is the only index: the triggers of MySQL/MariaDB and SQLite
    write one row per deleted key, and each index entry costs every bulk delete
    (two more indexes made the rows 2.58 times as dear, ``bench_capture.py``'s
    Q/Q1 on 2026-11-30), while every reader goes by primary key ranges or scans
    a queue kept short.
    """

    id = models.BigAutoField(primary_key=True)
    link = models.CharField(max_length=200)
    target_key = ExactTextField(blank=True, default="")
    kind = models.CharField(max_length=8, default="delete")
    created_at = models.DateTimeField(default=timezone.now)
    claim_token = models.CharField(max_length=32, blank=True, default="")
    claimed_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["id"]
        verbose_name = "captured deletion"

    def __str__(self) -> str:
        return f"{self.link}: {self.kind} {self.target_key!r}"


class WrittenReference(models.Model):
    """
    A source row of a link with ``capture_deletes=True`` whose reference was
    written (inserted, or its key updated to a value), logged by a trigger on the
    source's table in the writing transaction: what ``verify_links --incremental``
    checks (``crossdb.verification.incremental``).

    ``source_pk`` is the row's primary key as text: a run reads the row's current
    key, so later updates, NULLs and deleted rows need no log of their own.
    ``logged_at`` is the database's UTC clock when the writing statement began; a
    run at least ``CROSSDB_INCREMENTAL_RECHECK_DELAY`` seconds after it deletes
    the row once checked, unless its target is missing (younger rows stay).
    """

    id = models.BigAutoField(primary_key=True)
    link = models.CharField(max_length=200)
    source_pk = ExactTextField()
    logged_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        verbose_name = "written reference"
        indexes = [models.Index(fields=["link", "id"], name="crossdb_written_link_id")]

    def __str__(self) -> str:
        return f"{self.link}: row {self.source_pk!r}"
