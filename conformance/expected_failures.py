"""
Tests of Django's suite expected to fail with our fields, per Django series and mode.

Each entry: ``"module.tests.Class.test_name": (reason, "docs/<page>.rst#<section>")``. A reason
starting with ``DEFECT:`` is a library bug to fix, not a design decision: remove the entry with
the fix (the runner reports it as stale once the test passes).
"""

from __future__ import annotations

Entry = tuple[str, str]

EXPECTED: dict[tuple[str, str], dict[str, Entry]] = {}


def expected_failures(series: str, mode: str) -> dict[str, Entry]:
    """The list for Django ``series`` ("5.2") and ``mode`` ("same" or "routed")."""
    return EXPECTED.get((series, mode), {})
