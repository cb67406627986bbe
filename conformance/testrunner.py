"""
``TEST_RUNNER`` of the conformance settings: Django's DiscoverRunner, recording outcomes.

In the routed mode every database test gets both aliases (``databases``) and
``assertNumQueries()`` counts the queries of both: a relation that moved a query to the other
database keeps Django's expected count.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.test import TransactionTestCase
from django.test.runner import DiscoverRunner
from django.test.utils import iter_test_cases

from conformance.harness import RESULTS_ENV, RecordingResult, append_record, load_plan
from crossdb.testing import CaptureQueriesPerDatabase

ALIASES = ("default", "other")


class AllAliasesNumQueries:
    """``assertNumQueries(num)`` over the queries of every alias of the test, summed."""

    def __init__(self, test: Any, num: int, aliases: list[str]) -> None:
        self.captured = CaptureQueriesPerDatabase(using=aliases)
        self.test, self.num = test, num

    @property
    def captured_queries(self) -> list[dict[str, str]]:
        return [query for queries in self.captured.values() for query in queries]

    def __len__(self) -> int:
        return len(self.captured_queries)

    def __getitem__(self, index: int) -> dict[str, str]:
        return self.captured_queries[index]

    def __enter__(self) -> AllAliasesNumQueries:
        self.captured.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.captured.__exit__(exc_type, exc_value, traceback)
        if exc_type is None:
            executed = len(self)
            self.test.assertEqual(
                executed,
                self.num,
                f"{executed} queries executed on {'+'.join(self.captured)}, {self.num} "
                f"expected\nCaptured queries were:\n{self.captured.report()}",
            )


def count_queries_on_all_aliases() -> None:
    original = TransactionTestCase.assertNumQueries
    if getattr(original, "counts_all_aliases", False):
        return

    def assertNumQueries(
        self: Any, num: int, func: Any = None, *args: Any, using: str = DEFAULT_DB_ALIAS, **kw: Any
    ) -> Any:
        if using != DEFAULT_DB_ALIAS:
            return original(self, num, func, *args, using=using, **kw)
        context = AllAliasesNumQueries(self, num, sorted(self.databases))
        if func is None:
            return context
        with context:
            func(*args, **kw)
        return None

    assertNumQueries.counts_all_aliases = True  # type: ignore[attr-defined]
    TransactionTestCase.assertNumQueries = assertNumQueries  # type: ignore[method-assign]


class RecordingRunner(DiscoverRunner):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.routed = load_plan()["mode"] == "routed"
        if self.routed:
            count_queries_on_all_aliases()

    def get_resultclass(self) -> Any:
        return RecordingResult

    def get_databases(self, suite: Any) -> Any:
        if self.routed:
            for test in iter_test_cases(suite):
                cls = type(test)
                if issubclass(cls, TransactionTestCase) and cls.databases != "__all__":
                    cls.databases = {*cls.databases, *ALIASES}
        return super().get_databases(suite)

    def run_suite(self, suite: Any, **kwargs: Any) -> Any:
        result = super().run_suite(suite, **kwargs)
        append_record(RESULTS_ENV, {"id": "", "outcome": "finished", "error": ""})
        return result
