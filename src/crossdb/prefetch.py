"""
``prefetch_cross_db()``: Django's prefetch machinery, over relations across databases.

The batching itself lives in the descriptors' ``get_prefetch_querysets()``,
which Django's ``prefetch_related_objects`` calls like any other; so
``prefetch_related()``, ``Prefetch(..., queryset=..., to_attr=...)``, nested
lookups and 6.1's fetch modes all batch across databases, and these
functions stay a thin, explicit spelling of the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Model, prefetch_related_objects
from django.db.models.query import aprefetch_related_objects


def prefetch_cross_db(instances: Iterable[Model], *lookups: Any) -> list[Model]:
    """
    Load the related rows of ``instances`` for ``lookups``, in place.

    Costs one query per target database per chunk of keys for each
    cross-database step. Returns the instances as a list.
    """
    instances = list(instances)
    prefetch_related_objects(instances, *lookups)
    return instances


async def aprefetch_cross_db(instances: Iterable[Model], *lookups: Any) -> list[Model]:
    """The async variant of ``prefetch_cross_db()``."""
    instances = list(instances)
    await aprefetch_related_objects(instances, *lookups)
    return instances
