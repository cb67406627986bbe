"""
Project-wide checks. Per-field checks live on the field (``CrossDBForeignKey.check``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.apps import apps

from crossdb.fields import CrossDBForeignKey


def cross_db_fields(app_configs: Any = None) -> Iterator[CrossDBForeignKey]:
    """Every CrossDBForeignKey / CrossDBOneToOneField of the given (or all) apps."""
    configs = app_configs if app_configs is not None else apps.get_app_configs()
    for config in configs:
        for model in config.get_models():
            for field in model._meta.local_fields:
                if isinstance(field, CrossDBForeignKey):
                    yield field
