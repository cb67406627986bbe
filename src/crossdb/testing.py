"""
Test helpers: count and inspect the queries a block of code sends to each database.

Neither helper needs access to every database: an alias outside the test's
``databases`` (Django's TestCase attribute, pytest-django's ``django_db`` mark)
cannot run a query, so it is not captured and counts as 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from types import TracebackType

from django.db import connections
from django.test.testcases import DatabaseOperationForbidden  # type: ignore[attr-defined]
from django.test.utils import CaptureQueriesContext

__all__ = ["CaptureQueriesPerDatabase", "assert_num_queries_per_db"]


def _check_aliases(aliases: Iterable[str]) -> None:
    unknown = sorted(set(aliases) - set(connections))
    if unknown:
        raise ValueError(
            f"Unknown database alias(es) {', '.join(map(repr, unknown))}; DATABASES has: "
            f"{', '.join(map(repr, connections))}."
        )


def _capture(stack: ExitStack, alias: str) -> CaptureQueriesContext | None:
    context = CaptureQueriesContext(connections[alias])
    try:
        stack.enter_context(context)
    except DatabaseOperationForbidden:
        # Outside the test's ``databases``: every query would raise, so none can run.
        return None
    return context


class CaptureQueriesPerDatabase(Mapping[str, list[dict[str, str]]]):
    """
    Capture the queries a block runs, per database alias::

        with CaptureQueriesPerDatabase() as captured:
            list(Employee.objects.prefetch_related("user"))
        assert captured.counts == {"default": 1, "employee": 1, "asset": 0}
        assert "auth_user" in captured["default"][0]["sql"]

    It is a mapping ``{alias: [{"sql": ..., "time": ...}, ...]}`` over every alias
    in DATABASES (or those given as ``using``), in DATABASES order.
    """

    def __init__(self, using: Iterable[str] | None = None) -> None:
        self.aliases = list(connections) if using is None else list(using)
        _check_aliases(self.aliases)
        self._stack = ExitStack()
        self._contexts: dict[str, CaptureQueriesContext | None] = {}

    def __enter__(self) -> CaptureQueriesPerDatabase:
        with ExitStack() as stack:
            self._contexts = {alias: _capture(stack, alias) for alias in self.aliases}
            self._stack = stack.pop_all()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stack.__exit__(exc_type, exc_value, traceback)

    def __getitem__(self, alias: str) -> list[dict[str, str]]:
        context = self._contexts[alias]
        return [] if context is None else list(context.captured_queries)

    def __iter__(self) -> Iterator[str]:
        return iter(self._contexts)

    def __len__(self) -> int:
        return len(self._contexts)

    @property
    def counts(self) -> dict[str, int]:
        """``{alias: number of queries}``."""
        return {alias: len(queries) for alias, queries in self.items()}

    def report(self) -> str:
        """The captured SQL, one line a query, each prefixed with its alias."""
        return "\n".join(
            f"  [{alias}] {query['sql']}" for alias, queries in self.items() for query in queries
        )


@contextmanager
def assert_num_queries_per_db(expected: Mapping[str, int]) -> Iterator[CaptureQueriesPerDatabase]:
    """
    Assert how many queries the block runs on each database alias.

    Every alias not named in ``expected`` must see no query at all::

        with assert_num_queries_per_db({"default": 1, "employee": 1}):
            list(Employee.objects.prefetch_related("user"))

    On a mismatch the AssertionError lists the SQL run on each alias. The
    context manager yields the ``CaptureQueriesPerDatabase`` for further checks.
    """
    _check_aliases(expected)
    with CaptureQueriesPerDatabase() as captured:
        yield captured
    wanted = {alias: expected.get(alias, 0) for alias in captured}
    if captured.counts != wanted:
        message = f"queries per database: expected {wanted}, got {captured.counts}"
        raise AssertionError("\n".join(filter(None, [message, captured.report()])))
