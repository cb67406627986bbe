"""
The pytest plugin, registered through the ``pytest11`` entry point as ``crossdb``.

It is loaded in every pytest run of an environment where django-crossdb-toolkit
is installed, Django projects or not, so importing it must stay free of Django:
the fixture imports ``crossdb.testing`` only when a test asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    from crossdb.testing import CaptureQueriesPerDatabase


class DjangoAssertNumQueriesPerDb(Protocol):
    """The type of the ``django_assert_num_queries_per_db`` fixture."""

    def __call__(
        self, expected: Mapping[str, int]
    ) -> AbstractContextManager[CaptureQueriesPerDatabase]: ...


@pytest.fixture
def django_assert_num_queries_per_db() -> DjangoAssertNumQueriesPerDb:
    """
    ``crossdb.testing.assert_num_queries_per_db``::

        def test_prefetch(django_assert_num_queries_per_db):
            with django_assert_num_queries_per_db({"default": 1, "employee": 1}):
                list(Employee.objects.prefetch_related("user"))
    """
    from crossdb.testing import assert_num_queries_per_db

    return assert_num_queries_per_db


@pytest.fixture
def crossdb_capture_on_commit_callbacks() -> Callable[..., AbstractContextManager[list[Any]]]:
    """
    ``crossdb.testing.capture_on_commit_callbacks``: pytest-django's
    ``django_capture_on_commit_callbacks`` for every database at once::

        def test_delete(crossdb_capture_on_commit_callbacks):
            with crossdb_capture_on_commit_callbacks(execute=True):
                user.delete()
    """
    from crossdb.testing import capture_on_commit_callbacks

    return capture_on_commit_callbacks
