"""
``TEST_RUNNER`` of the conformance settings: Django's DiscoverRunner, recording outcomes.

In the routed mode every database test gets both aliases (``databases``) and
``assertNumQueries()`` counts the queries of both: a relation that moved a query to the other
database keeps Django's expected count.
"""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.test import TransactionTestCase
from django.test.runner import DiscoverRunner
from django.test.utils import iter_test_cases

from conformance.harness import (
    RESULTS_ENV,
    AllAliasesNumQueries,
    RecordingResult,
    append_record,
    load_plan,
)

ALIASES = ("default", "other")


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
