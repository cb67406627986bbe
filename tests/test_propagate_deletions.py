"""
manage.py propagate_deletions as a scheduler sees it: a real process, its exit status, its
stderr lines and its JSON document; usage errors, failures, and a database on a closed port.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import django
import pytest

import crossdb
from crossdb.models import PendingPropagation
from crossdb.progress import PlainProgress, progress_bar
from tests.integrity.models import Account, Membership, Sticker, Tag
from tests.test_deletion import all_pending, expire_claims, make_membership

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

REPO = Path(__file__).resolve().parent.parent
# --skip-checks: the test models' deliberate crossdb.W001 warnings would go to stderr.
COMMAND = [sys.executable, "-m", "django", "propagate_deletions", "--settings=tests.settings"]
COMMAND.append("--skip-checks")
ENVELOPE = [
    "schema_version",
    "command",
    "started_at",
    "finished_at",
    "duration_s",
    "versions",
    "databases",
]


def propagate(*args: str, closed: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CROSSDB_TEST_USE_TEST_DATABASES": "1",
        "CROSSDB_TEST_CLOSED_PORT": closed,
        "PYTHONPATH": str(REPO),
    }
    return subprocess.run(
        [*COMMAND, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture
def crashed_deletion(monkeypatch) -> None:
    """An account deleted by a process that died before propagating: 6 pending records."""
    monkeypatch.setattr("crossdb.propagation.after_commit", lambda *args, **kwargs: None)
    account = Account.objects.create(name="acme")
    make_membership(account)
    account.delete()
    expire_claims()


def snapshot() -> list[tuple]:
    return sorted(
        (row.pk, row._state.db, row.attempts, row.claim_token, row.last_error)
        for row in all_pending()
    )


BAD_OPTIONS = [
    (["--older-than", "nan"], "--older-than: 'nan' is not a number of seconds from 0 to"),
    (["--older-than", "inf"], "--older-than: 'inf' is not a number of seconds"),
    (["--older-than", "-1"], "--older-than: '-1' is not a number of seconds"),
    (["--older-than", "1e300"], "--older-than: '1e300' is not a number of seconds"),
    (["--older-than", "99999999999"], "--older-than: '99999999999' is not a number of seconds"),
    (["--older-than", "soon"], "--older-than: 'soon' is not a number of seconds"),
    (["--older-than"], "argument --older-than: expected one argument"),
    (["--database", "nope"], "--database: unknown database 'nope' (DATABASES has: 'default'"),
    (["--format", "xml"], "argument --format: invalid choice: 'xml'"),
    (["--verbosity", "9"], "argument -v/--verbosity: invalid choice: 9"),
    (["--bogus"], "unrecognized arguments: --bogus"),
]


class TestUsageErrors:
    @pytest.mark.parametrize(
        ("args", "message"), BAD_OPTIONS, ids=[" ".join(args) for args, _ in BAD_OPTIONS]
    )
    def test_one_line_exit_2_nothing_written(self, crashed_deletion, args, message):
        before = snapshot()

        result = propagate(*args)

        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        [line] = lines(result.stderr)
        assert line.startswith(f"CommandError: {message}"), line
        assert snapshot() == before

    @pytest.mark.parametrize(
        "args", [["--older-than", "nan"], ["--database", "nope"], ["--bogus"]], ids=str
    )
    def test_json_carries_the_error(self, crashed_deletion, args):
        before = snapshot()

        result = propagate("--format", "json", *args)

        assert result.returncode == 2
        document = json.loads(result.stdout)
        assert list(document)[: len(ENVELOPE)] == ENVELOPE
        assert (document["status"], document["exit_status"]) == ("usage", 2)
        assert document["error"]["exit_status"] == 2
        assert document["error"]["kind"] == "usage"
        [line] = lines(result.stderr)
        assert line == f"CommandError: {document['error']['message']}"
        assert snapshot() == before


class TestReports:
    def test_text_summary_on_stdout(self, crashed_deletion):
        result = propagate()

        assert (result.returncode, result.stderr) == (0, "")
        assert lines(result.stdout) == [
            "6 pending propagation(s) applied, 3 dependent row(s) changed, 0 failed."
        ]
        assert all_pending() == []

    def test_json_document(self, crashed_deletion):
        result = propagate("--format", "json")

        assert result.returncode == 0, result.stderr
        document = json.loads(result.stdout)
        assert list(document)[: len(ENVELOPE)] == ENVELOPE
        assert document["schema_version"] == 1
        assert document["command"] == "propagate_deletions"
        assert document["versions"]["crossdb"] == crossdb.__version__
        assert document["versions"]["django"] == django.get_version()
        started = datetime.fromisoformat(document["started_at"])
        assert started <= datetime.fromisoformat(document["finished_at"])
        assert document["duration_s"] >= 0
        assert document["databases"] == ["default", "employee", "asset"]
        assert (document["applied"], document["failed"], document["rows_changed"]) == (6, 0, 3)
        assert (document["status"], document["exit_status"], document["error"]) == ("ok", 0, None)
        assert document["skipped"]["too_young"]["count"] == 0
        assert lines(result.stderr) == [
            "6 pending propagation(s) applied, 3 dependent row(s) changed, 0 failed."
        ]

    def test_skipped_records_say_how_to_apply_them(self, crashed_deletion):
        young = propagate("--format", "json", "--older-than", "3600")

        document = json.loads(young.stdout)
        assert young.returncode == 0
        assert document["skipped"]["too_young"] == {
            "count": 6,
            "how_to_apply_now": "run propagate_deletions without --older-than",
        }
        assert document["options"] == {"databases": None, "older_than_s": 3600.0}

        PendingPropagation.objects.update(
            claim_token="other", claimed_until=datetime(2999, 1, 1, tzinfo=timezone.utc)
        )
        claimed = json.loads(propagate("--format", "json").stdout)["skipped"]["claimed"]
        assert claimed["count"] == 6
        assert claimed["claimed_until"].startswith("2999-01-01")
        assert "by a run after 2999-01-01" in claimed["how_to_apply_now"]

    def test_a_failed_record_exits_1_with_the_failure(self, crashed_deletion):
        row = PendingPropagation.objects.get(source_model="integrity.Membership")
        # Its field's on_delete is PROTECT now: nothing to propagate, the record fails.
        PendingPropagation.objects.filter(pk=row.pk).update(source_model="integrity.Guard")

        result = propagate("--format", "json")

        assert result.returncode == 1
        document = json.loads(result.stdout)
        assert (document["applied"], document["failed"]) == (5, 1)
        [failure] = document["failures"]
        assert (failure["id"], failure["database"], failure["link"]) == (
            row.pk,
            "default",
            "integrity.Guard.account",
        )
        assert "nothing to propagate" in failure["error"]
        assert document["error"]["kind"] == "failed"
        assert lines(result.stderr)[-1] == f"CommandError: {document['error']['message']}"
        assert "Traceback" not in result.stderr


class TestUnreachableDatabase:
    """``employee`` is PostgreSQL on 127.0.0.1:1, a closed port, for the subprocess."""

    @pytest.fixture
    def pending_everywhere(self, crashed_deletion):
        tag = Tag.objects.create(code="t1")
        Sticker.objects.create(tag=tag)
        tag.delete()  # stored in asset, applied in default
        expire_claims()
        PendingPropagation.objects.using("employee").create(
            source_model="integrity.Bin", source_field="shelf", target_model="integrity.Shelf"
        )

    def test_exit_3_names_the_alias_and_the_others_are_applied(self, pending_everywhere):
        result = propagate("--format", "json", closed="employee")

        assert result.returncode == 3, result.stderr
        assert "Traceback" not in result.stderr
        last = lines(result.stderr)[-1]
        assert last.startswith("CommandError: Database(s) unreachable: 'employee' (")
        assert last.endswith(
            "The records that need them stay pending; those of the other databases were applied."
        )
        document = json.loads(result.stdout)
        assert (document["status"], document["exit_status"]) == ("unreachable", 3)
        assert (document["error"]["kind"], document["error"]["exit_status"]) == ("unreachable", 3)
        assert list(document["unreachable"]) == ["employee"]
        assert document["databases"] == ["default", "employee", "asset"]
        # The sticker's record (asset -> default) and the seal's (default -> asset) were
        # applied; the account's records whose rows live in employee failed and stay pending
        # with the reason.
        assert not Sticker.objects.exists()
        assert document["applied"] == 2
        assert document["failed"] == 5
        failed = PendingPropagation.objects.using("default").all()
        assert len(failed) == 5
        assert all("'employee' is unreachable" in row.last_error for row in failed)
        assert all(row.claim_token == "" for row in failed)
        assert Membership.objects.count() == 1
        assert PendingPropagation.objects.using("employee").count() == 1

    def test_only_the_unreachable_database(self, pending_everywhere):
        result = propagate("--database", "employee", closed="employee")

        assert result.returncode == 3
        assert result.stdout == ""
        assert [line.split(" (")[0] for line in lines(result.stderr)] == [
            "0 pending propagation(s) applied, 0 dependent row(s) changed, 0 failed.",
            "CommandError: Database(s) unreachable: 'employee'",
        ]
        assert len(all_pending()) == 8  # the account's 6, the sticker's, employee's own


class TestProgress:
    def test_silent_by_default_when_not_on_a_terminal(self, crashed_deletion):
        assert propagate("-v", "0").stderr == ""

    def test_progress_option(self, crashed_deletion):
        result = propagate("--progress", "--format", "json")
        assert result.returncode == 0
        assert "propagate_deletions" in result.stderr
        assert "6/6" in result.stderr
        json.loads(result.stdout)

    def test_plain_fallback_without_tqdm(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError
        stream = io.StringIO()
        bar = progress_bar(stream, "propagate_deletions")
        assert isinstance(bar, PlainProgress)
        bar(0, 300)
        bar(300, 300)
        bar.close()
        text = stream.getvalue()
        assert text.startswith("\rpropagate_deletions: 0/300 records (0.0/s, ETA ?)")
        assert "\rpropagate_deletions: 300/300 records (" in text
        assert text.endswith(", ETA 0s)\n")
