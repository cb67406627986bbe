"""
What runs inside Django's ``runtests.py`` process (imported by the conformance settings).

- ``install()`` puts an import hook in front of the test apps' ``models`` modules: they are
  compiled from their source with the planned ``models.ForeignKey`` / ``models.OneToOneField``
  calls swapped for ours (``conformance.swap``), nothing written to ``__pycache__``; each
  module's count of swapped calls is appended to ``$CROSSDB_CONFORMANCE_SWAPS``.
- ``ConformanceRouter`` places the models of the routed mode (the plan's ``routes``).
- ``RecordingResult`` appends every test's outcome to ``$CROSSDB_CONFORMANCE_RESULTS`` (the
  result class of ``conformance.testrunner``).

Without ``$CROSSDB_CONFORMANCE_PLAN`` nothing is swapped or routed: Django's own fields.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import os
import re
import sys
import unittest
from collections.abc import Sequence
from types import CodeType
from typing import Any

from conformance import swap

PLAN_ENV = "CROSSDB_CONFORMANCE_PLAN"
SWAPS_ENV = "CROSSDB_CONFORMANCE_SWAPS"
RESULTS_ENV = "CROSSDB_CONFORMANCE_RESULTS"


def load_plan() -> dict[str, Any]:
    path = os.environ.get(PLAN_ENV)
    if not path:
        return {"mode": "baseline", "modules": {}}
    with open(path) as handle:
        plan: dict[str, Any] = json.load(handle)
    return plan


def append_record(env: str, record: dict[str, Any]) -> None:
    path = os.environ.get(env)
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps(record) + "\n")


# The import hook -------------------------------------------------------------------------


class SwappingLoader(importlib.machinery.SourceFileLoader):
    def __init__(self, fullname: str, path: str, relative: str, sites: set[tuple[int, int]]):
        super().__init__(fullname, path)
        self.relative = relative
        self.sites = sites

    def get_code(self, fullname: str) -> CodeType:
        source = self.get_data(self.path).decode()
        module = self.relative.split(os.sep, 1)[0]
        manager = module in swap.MANAGER_MODULES
        tree, count = swap.rewrite(source, self.relative, self.sites, manager=manager)
        append_record(
            SWAPS_ENV,
            {
                "file": self.relative,
                "module": fullname,
                "planned": len(self.sites),
                "swapped": count,
            },
        )
        return compile(tree, self.path, "exec", dont_inherit=True)


class SwappingFinder(importlib.abc.MetaPathFinder):
    """Finds ``<module>.models`` and ``<module>.models.*`` of the planned test modules."""

    def __init__(self, tests_dir: str, sites: dict[str, set[tuple[int, int]]]):
        self.tests_dir = tests_dir
        self.sites = sites  # relative file -> {(line, col)}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        parts = fullname.split(".")
        if len(parts) < 2 or parts[1] != "models":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None:
            return None
        relative = os.path.relpath(spec.origin, self.tests_dir)
        if relative not in self.sites:
            return None
        spec.loader = SwappingLoader(fullname, spec.origin, relative, self.sites[relative])
        return spec


def install() -> dict[str, Any]:
    """Install the import hook for the plan, once; return the plan."""
    plan = load_plan()
    if plan["modules"] and not any(isinstance(f, SwappingFinder) for f in sys.meta_path):
        sites: dict[str, set[tuple[int, int]]] = {}
        for module in plan["modules"].values():
            for file, line, col, _kind in module["swap"]:
                sites.setdefault(file, set()).add((line, col))
        # Files of a planned module with nothing to swap are still recorded (count 0).
        for file in plan.get("files", []):
            sites.setdefault(file, set())
        sys.meta_path.insert(0, SwappingFinder(plan["tests_dir"], sites))
    return plan


# The router ------------------------------------------------------------------------------


class ConformanceRouter:
    """Each model in the database the plan gives it ("default" unless listed)."""

    def __init__(self) -> None:
        self.routes: dict[str, str] = {}
        self.modules = set(load_plan()["modules"])
        for module in load_plan()["modules"].values():
            self.routes.update({label.lower(): alias for label, alias in module["routes"].items()})

    def _route(self, model: Any) -> str:
        opts = model._meta
        if opts.auto_created:  # a ManyToManyField's table lives with the field's model
            opts = opts.auto_created._meta
        return self.routes.get(opts.concrete_model._meta.label_lower, "default")

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return self._route(model)

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return self._route(model)

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool:
        # Ours, and Django's contrib apps (contenttypes is read from the database of the
        # object at hand), live in every database; the test apps' models only where routed.
        if app_label not in self.modules:
            return True
        model = hints.get("model")
        if model is not None:
            return db == self._route(model)
        label = f"{app_label}.{model_name}".lower()
        return db == self.routes.get(label, "default")


# The test runner -------------------------------------------------------------------------

_CLASS_FIXTURE = re.compile(r"^(setUpClass|tearDownClass|setUpModule|tearDownModule) \((.+)\)$")


def test_id(test: Any) -> str:
    """``module.tests.Class.test_name``; class fixtures as ``module.tests.Class.setUpClass``."""
    ident = str(test.id())
    match = _CLASS_FIXTURE.match(ident)
    return f"{match.group(2)}.{match.group(1)}" if match else ident


class RecordingResult(unittest.TextTestResult):
    """A TextTestResult that also appends each outcome to $CROSSDB_CONFORMANCE_RESULTS."""

    def _record(self, test: Any, outcome: str, err: Any = None) -> None:
        text = ""
        if err is not None:
            try:
                text = self._exc_info_to_string(err, test)
            except Exception:  # a remote (parallel) error may not format: keep its repr
                text = repr(err)
        append_record(RESULTS_ENV, {"id": test_id(test), "outcome": outcome, "error": text[-3000:]})

    def addSuccess(self, test: Any) -> None:
        super().addSuccess(test)
        self._record(test, "success")

    def addError(self, test: Any, err: Any) -> None:
        super().addError(test, err)
        self._record(test, "error", err)

    def addFailure(self, test: Any, err: Any) -> None:
        super().addFailure(test, err)
        self._record(test, "failure", err)

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            self._record(test, "failure" if failed else "error", err)

    def addSkip(self, test: Any, reason: str) -> None:
        super().addSkip(test, reason)
        self._record(test, "skip")

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self._record(test, "expectedFailure")

    def addUnexpectedSuccess(self, test: Any) -> None:
        super().addUnexpectedSuccess(test)
        self._record(test, "unexpectedSuccess")
