"""
Test helpers: count and inspect the queries a block of code sends to each database.

Neither helper needs access to every database: an alias outside the test's
``databases`` (Django's TestCase attribute, pytest-django's ``django_db`` mark)
cannot run a query, so it is not captured and counts as 0.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from types import TracebackType
from typing import Any

from django.db import connections
from django.test.testcases import DatabaseOperationForbidden  # type: ignore[attr-defined]
from django.test.utils import CaptureQueriesContext

__all__ = ["CaptureQueriesPerDatabase", "assert_num_queries_per_db", "capture_on_commit_callbacks"]

logger = logging.getLogger("crossdb.testing")


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


@contextmanager
def capture_on_commit_callbacks(
    *, using: Iterable[str] | None = None, execute: bool = False
) -> Iterator[list[Callable[[], object]]]:
    """
    Django's ``TestCase.captureOnCommitCallbacks()``, for every database at once.

    A deletion that reaches another database is applied by a callback of the
    deleting database's commit; when the referencing database has a
    transaction open, as it has in every ``TestCase``, that callback waits in
    turn for the referencing database's commit. Django's context manager
    follows one alias; this one follows all of them (or those in ``using``)
    and, with ``execute=True``, runs the callbacks registered in the block and
    those they register, in whatever database, until none is left::

        with capture_on_commit_callbacks(execute=True):
            user.delete()
        assert not Employee.objects.filter(user_id=key).exists()

    It yields the list of the callbacks, filled when the block ends.
    """
    aliases = list(connections) if using is None else list(using)
    _check_aliases(aliases)
    seen = {alias: len(connections[alias].run_on_commit) for alias in aliases}
    callbacks: list[Callable[[], object]] = []
    try:
        yield callbacks
    finally:
        # Adapted from Django 5.2's django/test/testcases.py (captureOnCommitCallbacks), over
        # every alias; tests/test_django_copies.py notices when Django's original changes.
        while True:
            found = False
            for alias in aliases:
                # [(savepoint ids, callback, robust)]; django-stubs knows two items.
                registered: list[Any] = connections[alias].run_on_commit
                new, seen[alias] = registered[seen[alias] :], len(registered)
                for _savepoints, callback, robust in new:
                    found = True
                    callbacks.append(callback)
                    if execute:
                        _run(callback, robust)
            if not found:
                break


def _run(callback: Callable[[], object], robust: bool) -> None:
    if not robust:
        callback()
        return
    try:
        callback()
    except Exception as error:
        logger.error("Error calling %s in on_commit() (%s).", callback, error, exc_info=True)
