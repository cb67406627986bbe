"""
django-crossdb-toolkit: relationships between models that live in different databases.

Importing this package imports no model, so it is safe in settings and apps.py.
"""

from __future__ import annotations

import logging
from importlib import metadata
from typing import TYPE_CHECKING, Any

from crossdb.exceptions import (
    CrossDatabaseJoinError,
    DanglingReference,
    LazyLoadForbidden,
    LazyLoadWarning,
    TargetDatabaseError,
    TooManyKeys,
)

if TYPE_CHECKING:
    from crossdb.descriptors import forbid_lazy_loads
    from crossdb.fields import CrossDBForeignKey, CrossDBOneToOneField
    from crossdb.prefetch import aprefetch_cross_db, prefetch_cross_db
    from crossdb.query import CrossDBManager, CrossDBQuerySet, CrossDBQuerySetMixin

# A library's loggers stay silent until the project configures logging: the commands
# report failures themselves, and Python's last-resort handler would repeat them on stderr.
logging.getLogger("crossdb").addHandler(logging.NullHandler())

try:
    __version__ = metadata.version("django-crossdb-toolkit")
except metadata.PackageNotFoundError:  # a checkout on sys.path, not installed
    __version__ = "0+unknown"

__all__ = [
    "CrossDBForeignKey",
    "CrossDBManager",
    "CrossDBOneToOneField",
    "CrossDBQuerySet",
    "CrossDBQuerySetMixin",
    "CrossDatabaseJoinError",
    "DanglingReference",
    "LazyLoadForbidden",
    "LazyLoadWarning",
    "TargetDatabaseError",
    "TooManyKeys",
    "aprefetch_cross_db",
    "forbid_lazy_loads",
    "prefetch_cross_db",
]

_LAZY = {
    "CrossDBForeignKey": "crossdb.fields",
    "CrossDBOneToOneField": "crossdb.fields",
    "forbid_lazy_loads": "crossdb.descriptors",
    "prefetch_cross_db": "crossdb.prefetch",
    "aprefetch_cross_db": "crossdb.prefetch",
    "CrossDBManager": "crossdb.query",
    "CrossDBQuerySet": "crossdb.query",
    "CrossDBQuerySetMixin": "crossdb.query",
}


def __getattr__(name: str) -> Any:
    # Resolved on first use so that `import crossdb` stays cheap and model-free.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'crossdb' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
