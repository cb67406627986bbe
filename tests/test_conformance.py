"""The conformance runner's own logic: planning the swap, counting it, comparing runs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conformance import swap
from conformance.runner import compare, outcomes_of, swap_problems

MODELS = """
from django.db import models


class Place(models.Model):
    name = models.CharField(max_length=50)


class Restaurant(Place):
    place = models.OneToOneField(Place, models.CASCADE, parent_link=True)


class Reporter(models.Model):
    mentor = models.ForeignKey("self", models.SET_NULL, null=True)
    user = models.ForeignKey("auth.User", models.CASCADE)


class Article(models.Model):
    reporter = models.ForeignKey(Reporter, models.CASCADE)
    strict = models.ForeignKey("Tag", models.CASCADE, db_constraint=True, related_name="+")
    tags = models.ManyToManyField("Tag", through="Tagging")


class Tag(models.Model):
    pass


class Tagging(models.Model):
    article = models.ForeignKey(Article, models.CASCADE)
    tag = models.ForeignKey(Tag, models.CASCADE)


class Comment(models.Model):
    article = models.ForeignKey("app.Article", models.CASCADE)
"""


def plan(mode: str) -> swap.ModulePlan:
    return swap.plan_module("app", {"app/models.py": MODELS}, mode)


def fields(sites: list[swap.Site]) -> list[tuple[str, int]]:
    return sorted((site.owner, site.line) for site in sites)


def test_same_mode_swaps_every_field_our_field_can_take() -> None:
    result = plan("same")
    kept = {site.owner: reason for site, reason in result.kept.items()}
    assert len(result.sites) == 8
    assert len(result.swapped) == 4  # mentor, user, reporter, Comment.article
    assert kept["Restaurant"].startswith("parent_link=True")
    assert kept["Article"].startswith("db_constraint=True")
    assert kept["Tagging"].startswith("field of a ManyToManyField's through model")
    assert result.routes == {}


def test_routed_mode_swaps_only_relations_that_cross() -> None:
    result = plan("routed")
    where = {label.split(".")[1]: alias for label, alias in result.routes.items()}

    def alias(name: str) -> str:
        return where.get(name, "default")

    swapped = {(s.owner, s.target) for s in result.swapped}
    assert ("Reporter", "Reporter") not in swapped  # "self" cannot cross
    assert ("Article", "Reporter") in swapped and ("Comment", "Article") in swapped
    for owner, target in swapped:
        assert alias(owner) != (alias(target) if target != swap.EXTERNAL else "default")
    # A kept field's two ends share a database: the through model and its M2M's ends.
    assert alias("Tagging") == alias("Article") == alias("Tag")
    assert alias("Restaurant") == alias("Place")


def test_rewrite_swaps_exactly_the_planned_calls() -> None:
    result = plan("same")
    sites = {(s.line, s.col) for s in result.swapped}
    tree, count = swap.rewrite(MODELS, "app/models.py", sites)
    text = ast.unparse(tree)
    assert count == 4
    assert text.count("crossdb.CrossDBForeignKey(") == 4
    assert text.count("models.ForeignKey(") == 3 and "import crossdb" in text
    assert swap.rewrite(MODELS, "app/models.py", set())[1] == 0


def test_a_module_with_nothing_swapped_fails_the_run() -> None:
    nothing = swap.plan_module("app", {"app/models.py": "class A:\n    pass\n"}, "same")
    ok = plan("same")
    records: list[dict[str, object]] = [{"file": "app/models.py", "swapped": 4}]
    assert swap_problems({"app": ok}, records) == []
    assert swap_problems({"app": nothing}, records) == [
        "app: no field could be swapped; it cannot claim coverage"
    ]
    assert swap_problems({"app": ok}, []) == [
        "app: never imported through the swap hook: app/models.py"
    ]
    assert swap_problems({"app": ok}, [{"file": "app/models.py", "swapped": 3}]) == [
        "app: 3 fields swapped, 4 planned"
    ]


def test_outcomes_keep_the_worst_of_a_test_and_see_an_unfinished_run() -> None:
    records: list[dict[str, object]] = [
        {"id": "m.tests.T.test_a", "outcome": "failure", "error": "AssertionError: x"},
        {"id": "m.tests.T.test_a", "outcome": "success", "error": ""},
        {"id": "m.tests.T.test_b", "outcome": "skip", "error": ""},
    ]
    outcomes, errors, finished = outcomes_of(records)
    assert outcomes == {"m.tests.T.test_a": "failure", "m.tests.T.test_b": "skip"}
    assert errors == {"m.tests.T.test_a": "AssertionError: x"}
    assert not finished
    assert outcomes_of([{"id": "", "outcome": "finished"}])[2]


def test_compare_counts_only_our_failures_and_reports_stale_entries() -> None:
    baseline = {f"m.tests.T.test_{c}": "success" for c in "abcde"} | {"m.tests.T.test_f": "error"}
    ours = {
        "m.tests.T.test_a": "success",
        "m.tests.T.test_b": "failure",  # listed
        "m.tests.T.test_c": "error",  # not listed
        "m.tests.T.test_d": "success",  # listed, passes: stale
        "m.tests.T.test_e": "skip",
        "m.tests.T.test_f": "error",  # fails with Django's field too: not ours
    }
    expected = {
        t: ("reason", "docs/conformance.rst#x")
        for t in ("m.tests.T.test_b", "m.tests.T.test_d", "m.tests.T.test_gone", "n.tests.X.y")
    }
    result = compare(baseline, ours, expected, ["m"], complete=True)
    assert (result.run, result.passed_django, result.passed_ours) == (6, 5, 2)
    assert result.expected == ["m.tests.T.test_b"]
    assert result.unexpected == ["m.tests.T.test_c"]
    assert result.fail_both == ["m.tests.T.test_f"]
    assert result.stale == [
        ("m.tests.T.test_d", "now success"),
        ("m.tests.T.test_gone", "did not run"),
    ]
    narrowed = compare(baseline, ours, expected, ["m"], complete=False)
    assert narrowed.stale == [("m.tests.T.test_d", "now success")]


def test_every_expected_failure_names_a_reason_and_an_existing_docs_section() -> None:
    from conformance.expected_failures import EXPECTED, FLAKY

    repo = Path(__file__).resolve().parent.parent
    entries = [entry for listed in EXPECTED.values() for entry in listed.values()]
    for reason, where in {*entries, *FLAKY.values()}:
        page, _, anchor = where.partition("#")
        titles = re.findall(r"^(\S.*)\n[-=~^]{3,}$", (repo / page).read_text(), re.MULTILINE)
        slugs = {re.sub(r"[^a-z0-9]+", "-", t.lower().replace("``", "")).strip("-") for t in titles}
        assert reason and anchor in slugs, f"{where}: no section {anchor!r} ({reason})"
