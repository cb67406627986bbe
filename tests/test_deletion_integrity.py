"""
on_delete across databases keeps Django's Collector contract at its edges.

Each class is one defect that changed or lost data, or broke Django's rules,
before the deletion engine was split into deletion.py (collect, check, record)
and propagation.py (claim, apply, forget).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.admin.utils import NestedObjects
from django.db import connections, transaction
from django.db.models import RestrictedError, signals

from crossdb.propagation import propagate_pending
from tests.helpers import all_pending, expire_claims
from tests.integrity.models import (
    Account,
    Alert,
    Left,
    Lock,
    Membership,
    MembershipNote,
    Node,
    Right,
    Seal,
    Site,
    Sticker,
    Tag,
    Visit,
)

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)
REPO = Path(__file__).resolve().parent.parent


class Boom(Exception):
    pass


class TestReferencingDatabaseInATransaction:
    """Defect 1: the cascade ran inside the caller's transaction and was rolled back with it."""

    def test_a_rolled_back_transaction_there_keeps_the_pending_row(self):
        account = Account.objects.create(name="acme")
        membership = Membership.objects.create(account=account)
        key = account.pk

        with pytest.raises(Boom), transaction.atomic(using="employee"):
            account.delete()  # "default" autocommits: the deletion commits
            raise Boom

        assert not Account.objects.filter(pk=key).exists()
        assert Membership.objects.filter(pk=membership.pk).exists()
        [row] = [r for r in all_pending() if r.source_model == "integrity.Membership"]
        assert row.keys == [key]

        expire_claims()  # the rolled back callback never comes; its lease runs out
        result = propagate_pending()

        assert result.failed == 0
        assert not Membership.objects.filter(pk=membership.pk).exists()
        assert all_pending() == []

    def test_the_propagation_waits_for_that_transactions_commit(self):
        account = Account.objects.create(name="acme")
        membership = Membership.objects.create(account=account)

        with transaction.atomic(using="employee"):
            account.delete()
            # Not applied on another connection, nor inside the caller's transaction.
            assert Membership.objects.filter(pk=membership.pk).exists()
            assert {r.source_model for r in all_pending()} >= {"integrity.Membership"}

        assert not Membership.objects.filter(pk=membership.pk).exists()
        assert all_pending() == []

    def test_both_databases_in_transactions_commit_in_either_order(self):
        account = Account.objects.create(name="acme")
        Membership.objects.create(account=account)

        with transaction.atomic(using="employee"), transaction.atomic(using="default"):
            account.delete()
        # default committed first, then employee: applied at employee's commit.
        assert not Membership.objects.exists()

        other = Account.objects.create(name="other")
        Membership.objects.create(account=other)
        with transaction.atomic(using="default"), transaction.atomic(using="employee"):
            other.delete()
        # employee committed first, then default: applied at default's commit.
        assert not Membership.objects.exists()
        assert all_pending() == []


class TestExactKeys:
    """Defect 2: deleting 'abc' and 'x' rewrote references to 'ABC' and 'x ' too (MariaDB)."""

    def test_only_the_deleted_keys_references_are_touched(self):
        sites = {code: Site.objects.create(code=code) for code in ("abc", "ABC", "x", "x ")}
        for code in sites:
            Visit.objects.create(site_id=code)

        Site.objects.filter(code__in=["abc", "x"]).delete()

        assert sorted(Visit.objects.values_list("site_id", flat=True)) == ["ABC", "x "]
        assert all_pending() == []


class TestCycles:
    """Defect 3: a cyclic CASCADE recursed forever (RecursionError)."""

    def test_a_row_pointing_at_itself(self):
        node = Node.objects.create()
        node.parent = node
        node.save()
        child = Node.objects.create(parent=node)

        node.delete()

        assert not Node.objects.filter(pk__in=[node.pk, child.pk]).exists()

    def test_a_cycle_of_two_models_in_two_databases(self):
        left = Left.objects.create()
        right = Right.objects.create(left=left)
        left.right = right
        left.save()
        other = Left.objects.create(right=right)

        left.delete()

        assert not Right.objects.exists()
        assert not Left.objects.filter(pk__in=[left.pk, other.pk]).exists()
        assert all_pending() == []


class TestRestrictThroughACascade:
    """Defect 4: P <-CASCADE- R <-RESTRICT- A with R in another database was not checked."""

    @staticmethod
    def chain() -> tuple[Account, Membership]:
        account = Account.objects.create(name="acme")
        return account, Membership.objects.create(account=account)

    def test_an_ordinary_restrict_in_the_other_database_blocks_up_front(self):
        account, membership = self.chain()
        lock = Lock.objects.create(membership=membership)

        with pytest.raises(RestrictedError) as info:
            account.delete()

        assert info.value.restricted_objects == {lock}
        assert Account.objects.filter(pk=account.pk).exists()
        assert Membership.objects.filter(pk=membership.pk).exists()
        assert all_pending() == []

    def test_a_cross_database_restrict_further_down_blocks_up_front(self):
        account, membership = self.chain()
        seal = Seal.objects.create(membership=membership)

        with pytest.raises(RestrictedError) as info:
            Account.objects.filter(pk=account.pk).delete()

        assert info.value.restricted_objects == {seal}
        assert Account.objects.filter(pk=account.pk).exists()
        assert all_pending() == []

    def test_lifted_when_the_same_deletion_removes_the_referrer_in_its_database(self):
        account, membership = self.chain()
        Lock.objects.create(membership=membership, account=account)

        account.delete()

        # Applied the first time, in one transaction: no RestrictedError, no retry.
        assert all_pending() == []
        assert not Membership.objects.exists()
        assert not Lock.objects.exists()

    def test_lifted_when_the_same_deletion_removes_the_referrer_in_a_third_database(self):
        account, membership = self.chain()
        Seal.objects.create(membership=membership, account=account)

        account.delete()

        assert all_pending() == []
        assert not Membership.objects.exists()
        assert not Seal.objects.exists()

    def test_lifted_whatever_order_the_propagations_are_applied_in(self, monkeypatch):
        account, membership = self.chain()
        Seal.objects.create(membership=membership, account=account)
        monkeypatch.setattr("crossdb.propagation.after_commit", lambda *a, **k: None)
        account.delete()
        expire_claims()
        # Membership's row first: the seal in "asset" still restricts it, but the
        # same deletion removes the seal, so the restriction is lifted.
        [first] = [r for r in all_pending() if r.source_model == "integrity.Membership"]
        propagate_pending(ids=[first.pk])
        assert not Membership.objects.exists()

        propagate_pending()

        assert not Seal.objects.exists()
        assert all_pending() == []

    def test_a_referrer_created_after_the_deletion_still_restricts(self, monkeypatch):
        account, membership = self.chain()
        monkeypatch.setattr("crossdb.propagation.after_commit", lambda *a, **k: None)
        account.delete()
        expire_claims()
        newcomer = Seal.objects.create(membership=membership)  # not part of the deletion

        result = propagate_pending()

        assert result.failed == 1
        assert Membership.objects.filter(pk=membership.pk).exists()
        assert Seal.objects.filter(pk=newcomer.pk).exists()
        [row] = [r for r in all_pending() if r.source_model == "integrity.Membership"]
        assert "RestrictedError" in row.last_error


class TestAdminSeesRestrict:
    """Defect 5: NestedObjects.protected stayed empty, so the admin offered the deletion."""

    def test_nested_objects_lists_cross_database_restrict(self):
        account = Account.objects.create(name="acme")
        membership = Membership.objects.create(account=account)
        seal = Seal.objects.create(membership=membership)
        lock = Lock.objects.create(membership=membership)

        collector = NestedObjects(using="default")
        collector.collect([account])

        assert {seal, lock} <= collector.protected
        assert Membership.objects.filter(pk=membership.pk).exists()
        assert all_pending() == []

    def test_delete_page_refuses_and_post_is_not_a_500(self, client):
        from django.contrib.auth.models import User

        client.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
        account = Account.objects.create(name="acme")
        Seal.objects.create(membership=Membership.objects.create(account=account))
        url = f"/admin/integrity/account/{account.pk}/delete/"

        page = client.get(url)
        assert page.status_code == 200
        assert page.context["protected"]
        posted = client.post(url, {"post": "yes"})

        assert posted.status_code in (200, 403)
        assert Account.objects.filter(pk=account.pk).exists()


class TestBookkeepingWithoutSignals:
    """Defect 10: delete receivers connected without a sender saw PendingPropagation rows."""

    def test_receivers_never_see_the_librarys_rows(self):
        seen: list[str] = []

        def receiver(sender, **kwargs):
            seen.append(sender._meta.label)

        signals.pre_delete.connect(receiver, weak=False)
        signals.post_delete.connect(receiver, weak=False)
        try:
            account = Account.objects.create(name="acme")
            Membership.objects.create(account=account)
            account.delete()
        finally:
            signals.pre_delete.disconnect(receiver)
            signals.post_delete.disconnect(receiver)

        assert "crossdb.PendingPropagation" not in seen
        assert "integrity.Membership" in seen  # the cascade itself is an ORM deletion
        assert all_pending() == []


class TestOneBadKey:
    """Defect 11: one key the referencing database could not take failed 999 others forever."""

    def test_a_key_the_column_cannot_hold_is_skipped(self):
        tags = [Tag.objects.create(code=code) for code in ("k\x00ey", "plain", "other")]
        stickers = {tag.code: Sticker.objects.create(tag_id=tag.code) for tag in tags[1:]}
        if connections["default"].vendor != "postgresql":
            # SQLite stores the NUL: the reference exists and is cascaded like the others.
            Sticker.objects.create(tag_id="k\x00ey")

        Tag.objects.all().delete()

        assert not Sticker.objects.filter(pk__in=[s.pk for s in stickers.values()]).exists()
        assert not Sticker.objects.exists()
        assert all_pending() == []

    def test_a_failing_key_stays_pending_alone(self):
        tags = [Tag.objects.create(code=f"t{i}") for i in range(5)]
        for tag in tags:
            Sticker.objects.create(tag=tag, note="stuck" if tag.code == "t3" else "")

        def refuse(sender, instance, **kwargs):
            if instance.note == "stuck":
                raise Boom("this sticker is stuck")

        signals.pre_delete.connect(refuse, sender=Sticker, weak=False)
        try:
            Tag.objects.all().delete()
        finally:
            signals.pre_delete.disconnect(refuse, sender=Sticker)

        assert list(Sticker.objects.values_list("tag_id", flat=True)) == ["t3"]
        [row] = all_pending()
        assert row.keys == ["t3"]
        assert (row.attempts, row.claim_token) == (1, "")
        assert "this sticker is stuck" in row.last_error

        result = propagate_pending()  # the receiver is gone: it applies now
        assert (result.applied, result.failed) == (1, 0)
        assert not Sticker.objects.exists()


def manage(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "CROSSDB_TEST_USE_TEST_DATABASES": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "django", *args, "--settings=tests.settings"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class TestConcurrentRunners:
    """Defect 9: three concurrent runs applied each row about three times, and most exited 1."""

    def test_three_runs_apply_each_row_once_and_exit_0(self, monkeypatch):
        monkeypatch.setattr("crossdb.propagation.after_commit", lambda *a, **k: None)
        accounts = Account.objects.bulk_create(Account(name=f"a{i}") for i in range(120))
        accounts = list(Account.objects.filter(name__startswith="a"))
        Membership.objects.bulk_create(Membership(account=a) for a in accounts)
        for account in accounts:  # one deletion, so one pending row, per account
            Account.objects.filter(pk=account.pk).delete()
        rows = len(all_pending())
        assert rows >= 120
        expire_claims()

        runs = [manage("propagate_deletions") for _ in range(3)]
        outputs = [run.communicate(timeout=300) for run in runs]

        assert [run.returncode for run in runs] == [0, 0, 0], outputs[0][1][-3000:]
        applied = [int(out.split(" pending propagation(s) applied")[0]) for out, _ in outputs]
        assert sum(applied) == rows, outputs
        assert not Membership.objects.exists()
        assert all_pending() == []


KILL_SCRIPT = """
import os, signal, sys
import django

django.setup()
from crossdb import propagation
from tests.integrity.models import Account

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if sys.argv[1] == "after-commit":
    propagation.after_commit = die  # the deletion committed, nothing propagated yet
else:
    propagation._forget = die  # propagated and committed, the record not yet removed
Account.objects.get(name="acme").delete()
"""


class TestKilledProcess:
    """A real process killed with SIGKILL at each step: nothing lost, nothing applied twice."""

    @staticmethod
    def run_and_kill(stage: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "CROSSDB_TEST_USE_TEST_DATABASES": "1",
            "PYTHONPATH": str(REPO),
            "DJANGO_SETTINGS_MODULE": "tests.settings",
        }
        return subprocess.run(
            [sys.executable, "-c", KILL_SCRIPT, stage],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    @pytest.mark.parametrize("stage", ["after-commit", "before-forget"])
    def test_nothing_lost_nothing_applied_twice(self, stage):
        account = Account.objects.create(name="acme")
        membership = Membership.objects.create(account=account)
        MembershipNote.objects.create(membership=membership)
        fallback = Account.objects.create(name="fallback")
        alert = Alert.objects.create(account=account)  # SET(callable): re-applying would show

        killed = self.run_and_kill(stage)

        assert killed.returncode == -9, killed.stderr
        assert not Account.objects.filter(name="acme").exists()
        assert Membership.objects.exists() == (stage == "after-commit")
        # The dead process still holds its claim: a runner leaves its rows alone.
        assert propagate_pending().applied == 0
        assert Membership.objects.exists() == (stage == "after-commit")

        expire_claims()
        first = propagate_pending()

        assert first.failed == 0
        assert not Membership.objects.exists()
        assert not MembershipNote.objects.exists()
        alert.refresh_from_db()
        assert alert.account_id == fallback.pk
        assert all_pending() == []
        if stage == "before-forget":
            # Re-applied: only rows still holding the deleted key are touched, so none.
            assert first.rows_changed == 0
