"""The one table of this app: deletions whose effects are still to be applied elsewhere."""

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
    and removed once the policy has been applied in the source's database, so
    a process that dies in between leaves a row to finish the job from.
    """

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    source_model = models.CharField(max_length=200)
    source_field = models.CharField(max_length=100)
    target_model = models.CharField(max_length=200)
    keys_json = models.TextField()
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

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
