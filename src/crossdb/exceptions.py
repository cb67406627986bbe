"""Public exceptions of django-crossdb-toolkit."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldError, ImproperlyConfigured, ObjectDoesNotExist


class DanglingReference(ObjectDoesNotExist):
    """
    A cross-database reference whose target row does not exist.

    Each field raises its own subclass, ``Model.field.DanglingReference``, which
    also subclasses the target model's ``DoesNotExist``, so existing
    ``except User.DoesNotExist`` blocks keep working.
    """

    def __init__(
        self,
        message: str,
        *,
        model: Any = None,
        field: Any = None,
        value: Any = None,
        database: str | None = None,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.field = field
        self.value = value
        self.database = database


class CrossDatabaseJoinError(FieldError):
    """A query needed an SQL join between tables that live in different databases."""


class TargetDatabaseError(ImproperlyConfigured):
    """The database holding a cross-database target cannot be determined or does not exist."""


class TooManyKeys(ValueError):
    """A lookup across databases would need more keys than CROSSDB_MAX_LOOKUP_KEYS allows."""


class LazyLoadForbidden(RuntimeError):
    """A lazy load across databases happened inside ``forbid_lazy_loads()``."""
