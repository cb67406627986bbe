"""
The pytest plugin, registered through the ``pytest11`` entry point as ``crossdb``.

It is loaded in every pytest run of an environment where django-crossdb-toolkit
is installed, Django projects or not, so importing it must stay free of Django:
the fixture imports ``crossdb.testing`` only when a test asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
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


LAZY_LOAD_MODES = ("allow", "warn", "raise")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("crossdb").addoption(
        "--crossdb-lazy-loads",
        choices=LAZY_LOAD_MODES,
        default=None,
        help="CROSSDB_LAZY_LOADS for every test: warn or raise on each lazy load across "
        "databases (a test's crossdb_lazy_loads marker wins).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "crossdb_lazy_loads(mode): CROSSDB_LAZY_LOADS for this test: 'allow', 'warn' or 'raise'.",
    )


@pytest.fixture(autouse=True)
def _crossdb_lazy_loads(request: pytest.FixtureRequest) -> Iterator[None]:
    """Apply --crossdb-lazy-loads or the crossdb_lazy_loads marker; Django only if asked."""
    marker = request.node.get_closest_marker("crossdb_lazy_loads")
    mode = request.config.getoption("crossdb_lazy_loads", None)
    if marker is not None:
        mode = marker.args[0] if marker.args else marker.kwargs.get("mode")
        if mode not in LAZY_LOAD_MODES:
            raise pytest.UsageError(
                f"@pytest.mark.crossdb_lazy_loads({mode!r}): use one of "
                f"{', '.join(map(repr, LAZY_LOAD_MODES))}."
            )
    if mode is None:
        yield
        return
    from django.test import override_settings

    with override_settings(CROSSDB_LAZY_LOADS=mode):
        yield
