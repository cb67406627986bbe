"""
verify_links and the capture queue: keys the triggers captured are pending, not orphans;
the queue and the truncate markers are in the report; a complete run clears the markers
written before it started (check crossdb.W042 goes quiet).

``integrity.CapMember.account``'s target is in ``default``: PostgreSQL on the real
topology, where a real ``TRUNCATE`` writes the marker; on SQLite (no ``TRUNCATE``) the test
writes the row PostgreSQL's trigger would.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connections
from django.utils import timezone

from crossdb.capture import suspended
from crossdb.capture_checks import check_capture
from crossdb.models import CapturedDeletion
from crossdb.propagation import propagate_pending
from crossdb.verification import Verifier
from tests.helpers import run_command
from tests.integrity.models import CapAccount
from tests.test_capture import KINDS, LINKS, Scenario, raw_delete
from tests.test_verify_links import verify

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)
LINK = "integrity.CapMember.account"


def label(kind: str) -> str:
    return "integrity.CapUse.token" if kind == "token" else LINKS[kind][0]


@pytest.mark.parametrize("kind", KINDS)
def test_captured_keys_are_pending_until_applied(kind):
    scenario = Scenario(kind)
    raw_delete(type(scenario.target), scenario.alias, [scenario.target.pk])

    result, document = verify(label(kind))

    assert result.exit_code == 0, result.stdout + result.stderr
    [link] = document["links"]
    assert (link["orphans"], link["pending"]) == (0, 2)
    [queued] = document["captured_deletions"]
    assert {k: queued[k] for k in ("database", "link", "rows")} == {
        "database": scenario.alias,
        "link": label(kind),
        "rows": 1,
    }
    assert 0 <= queued["oldest_age_s"] < 60
    text = run_command("verify_links", label(kind))
    assert f"Captured deletions: {label(kind)}: 1 deleted key(s) queued in " in text.stdout

    assert propagate_pending().applied == 1
    result, document = verify(label(kind))
    assert (document["links"][0]["pending"], document["captured_deletions"]) == (0, [])


def test_a_deletion_not_captured_is_an_orphan():
    scenario = Scenario("account")
    with suspended(using="default"):
        raw_delete(CapAccount, "default", [scenario.target.pk])

    result, document = verify(LINK)

    assert result.exit_code == 1
    assert (document["links"][0]["orphans"], document["links"][0]["pending"]) == (2, 0)
    assert document["captured_deletions"] == []


def test_pending_keys_include_the_captured_keys():
    scenario = Scenario("account")
    raw_delete(CapAccount, "default", [scenario.target.pk])
    verifier = Verifier(scenario.refs[0]._meta.get_field("account"))
    assert verifier.pending_keys() == {scenario.target.pk}


def truncate_accounts() -> None:
    """Empty CapAccount's table as a TRUNCATE does, leaving the marker its trigger writes."""
    connection = connections["default"]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE integrity_capaccount")
        return
    with suspended(using="default"), connection.cursor() as cursor:
        cursor.execute("DELETE FROM integrity_capaccount")
    CapturedDeletion.objects.using("default").create(link=LINK, kind="truncate")


def markers() -> list[CapturedDeletion]:
    return list(CapturedDeletion.objects.using("default").filter(kind="truncate"))


def w042() -> list[Any]:
    return [m for m in check_capture(databases=["default"]) if m.id == "crossdb.W042"]


def truncate_again_during_the_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the link's scan started, a new row and another TRUNCATE: keys it did not see."""
    run = Verifier.run

    def truncated_meanwhile(self: Verifier) -> Any:
        result = run(self)
        CapAccount.objects.create(name="new")
        truncate_accounts()
        return result

    monkeypatch.setattr(Verifier, "run", truncated_meanwhile)


class TestTruncation:
    def test_a_complete_run_reports_and_clears_the_marker(self):
        Scenario("account")
        truncate_accounts()
        assert w042()

        result, document = verify(LINK)

        assert result.exit_code == 1  # the references the emptied table left are orphans
        assert document["links"][0]["orphans"] == 3
        [row] = document["truncations"]
        assert {k: row[k] for k in ("database", "link", "markers", "cleared")} == {
            "database": "default",
            "link": LINK,
            "markers": 1,
            "cleared": 1,
        }
        assert markers() == []
        assert w042() == []

    def test_the_text_report_says_so(self):
        Scenario("account")
        truncate_accounts()
        result = run_command("verify_links", LINK)
        assert f"Truncated: the target table of {LINK} was emptied in 'default'" in result.stdout
        assert "1 marker(s) cleared by this complete run" in result.stdout
        assert markers() == []

    @pytest.mark.parametrize(
        "options",
        [{"partition": "0/2"}, {"fix": "delete", "dry_run": True}],
        ids=["partition", "dry-run"],
    )
    def test_a_part_or_a_dry_run_reports_it_and_clears_nothing(self, options):
        Scenario("account")
        truncate_accounts()

        _result, document = verify(LINK, **options)

        [row] = document["truncations"]
        assert (row["markers"], row["cleared"]) == (1, 0)
        assert len(markers()) == 1
        assert w042()

    def test_an_incremental_run_reports_it_and_clears_nothing(self):
        """It checks only logged references: those the emptied table left were not logged."""
        Scenario("account")
        truncate_accounts()

        _result, document = verify(LINK, incremental=True)

        [row] = document["truncations"]
        assert (row["markers"], row["cleared"]) == (1, 0)
        assert len(markers()) == 1
        assert w042()

    def test_a_marker_written_during_the_run_stays(self, monkeypatch):
        Scenario("account")
        truncate_accounts()
        truncate_again_during_the_scan(monkeypatch)
        result, document = verify(LINK)

        assert result.exit_code == 1
        [row] = document["truncations"]
        assert (row["markers"], row["cleared"]) == (1, 1)
        assert len(markers()) == 1
        assert [w.obj for w in w042()] == [LINK]

    def test_an_application_clock_ahead_of_the_databases_clears_only_what_the_scan_saw(
        self, monkeypatch
    ):
        """Markers are told apart by id, not by time: the two clocks may disagree."""
        Scenario("account")
        truncate_accounts()
        truncate_again_during_the_scan(monkeypatch)  # stamped by the database's clock
        real_now = timezone.now
        monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(hours=1))
        _result, document = verify(LINK)

        [row] = document["truncations"]
        assert (row["markers"], row["cleared"]) == (1, 1)
        assert len(markers()) == 1

    def test_a_repaired_run_clears_it_too(self):
        Scenario("account")
        truncate_accounts()

        result, document = verify(LINK, fix="delete", interactive=False)

        assert result.exit_code == 0
        assert document["links"][0]["orphans"] == 0
        assert document["truncations"][0]["cleared"] == 1
        assert markers() == []
