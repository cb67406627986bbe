"""Public exceptions of django-crossdb-toolkit."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

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


# Django 6.1's FETCH_RAISE raises FieldFetchBlocked; ours is one too where it exists, so
# one ``except FieldFetchBlocked`` catches both.
_FieldFetchBlocked: type[Exception] | None = getattr(
    import_module("django.core.exceptions"), "FieldFetchBlocked", None
)

if TYPE_CHECKING or _FieldFetchBlocked is None:

    class LazyLoadForbidden(RuntimeError):
        """
        A lazy load across databases, inside ``forbid_lazy_loads()`` or with
        ``CROSSDB_LAZY_LOADS = "raise"``. On Django 6.1+ also a ``FieldFetchBlocked``.
        """

else:

    class LazyLoadForbidden(RuntimeError, _FieldFetchBlocked):
        """
        A lazy load across databases, inside ``forbid_lazy_loads()`` or with
        ``CROSSDB_LAZY_LOADS = "raise"``. On Django 6.1+ also a ``FieldFetchBlocked``.
        """


class LazyLoadWarning(RuntimeWarning):
    """A lazy load across databases with ``CROSSDB_LAZY_LOADS = "warn"``."""
