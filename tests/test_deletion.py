"""on_delete across databases: every policy, rollbacks, crashes and cost."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from django.contrib.admin.utils import NestedObjects
from django.contrib.auth.models import User
from django.db import connections, transaction
from django.db.models import ProtectedError, RestrictedError

from crossdb.models import PendingPropagation
from tests.helpers import all_pending, assert_num_queries_per_db, expire_claims, run_command
from tests.hr.models import Employee, Order
from tests.integrity.models import (
    Account,
    Alert,
    Archive,
    Guard,
    Ledger,
    Membership,
    MembershipNote,
    Subscription,
    Watch,
)
from tests.inventory.models import Asset
from tests.people.models import BigTarget

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def pending(alias: str = "default", source: str | None = None) -> list[PendingPropagation]:
    """Pending rows; each propagated field pointing at a deleted target records its own."""
    rows = PendingPropagation.objects.using(alias).all()
    return list(rows if source is None else rows.filter(source_model=source))


@pytest.fixture
def account() -> Account:
    return Account.objects.create(name="acme")


@pytest.fixture
def crash_after_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process dies right after the deletion commits: nothing is propagated."""
    monkeypatch.setattr("crossdb.propagation.after_commit", lambda *args, **kwargs: None)


@pytest.fixture
def crashed(crash_after_commit: None) -> Callable[[], None]:
    """Call it after the deletion: the dead process's lease on its rows has run out."""
    return expire_claims


def make_membership(account: Account, notes: int = 2) -> Membership:
    membership = Membership.objects.create(account=account)
    for n in range(notes):
        MembershipNote.objects.create(membership=membership, text=f"note {n}")
    return membership


class TestCascade:
    def test_instance_delete_cascades_through_ordinary_foreign_keys(self, account):
        make_membership(account)
        other = make_membership(Account.objects.create(name="other"))

        account.delete()

        assert list(Membership.objects.all()) == [other]
        assert MembershipNote.objects.count() == 2
        assert all_pending() == []

    def test_queryset_delete(self, account):
        make_membership(account)
        make_membership(Account.objects.create(name="acme-2"))
        kept = make_membership(Account.objects.create(name="other"))

        deleted, per_model = Account.objects.filter(name__startswith="acme").delete()

        assert (deleted, per_model) == (2, {"integrity.Account": 2})
        assert list(Membership.objects.all()) == [kept]
        assert all_pending() == []

    def test_cascade_continues_across_a_third_database(self):
        user = User.objects.create(username="ada")
        employee = Employee.objects.create(user=user, name="Ada")
        asset = Asset.objects.create(name="laptop", owner=employee)

        user.delete()

        assert not Employee.objects.filter(pk=employee.pk).exists()
        asset.refresh_from_db()
        assert asset.owner_id is None
        assert all_pending() == []

    def test_to_field_and_character_keys(self):
        from tests.people.models import CodeTarget, SlugTarget

        code = CodeTarget.objects.create(code="C-1", name="c")
        slug = SlugTarget.objects.create(slug="s-1", name="s")
        by_code = Order.objects.create(code=code)
        by_slug = Order.objects.create(slug_target=slug)
        survivor = Order.objects.create(note="unrelated")

        code.delete()
        slug.delete()

        assert list(Order.objects.all()) == [survivor]
        assert not Order.objects.filter(pk__in=[by_code.pk, by_slug.pk]).exists()


class TestSetPolicies:
    def test_set_null(self):
        big = BigTarget.objects.create(name="b")
        order = Order.objects.create(big=big, buyer=None)

        big.delete()

        order.refresh_from_db()
        assert order.big_id is None

    def test_set_default(self, account):
        subscription = Subscription.objects.create(account=account)

        account.delete()

        subscription.refresh_from_db()
        assert subscription.account_id == -1

    def test_set_callable(self, account):
        fallback = Account.objects.create(name="fallback")
        alert = Alert.objects.create(account=account)

        account.delete()

        alert.refresh_from_db()
        assert alert.account == fallback

    def test_set_value(self, account):
        archive = Archive.objects.create(account=account)

        account.delete()

        archive.refresh_from_db()
        assert archive.account_id == -1

    def test_do_nothing_leaves_the_reference_dangling(self, account):
        watch = Watch.objects.create(account=account)
        key = account.pk

        account.delete()

        watch.refresh_from_db()
        assert watch.account_id == key
        with pytest.raises(Watch.account.DanglingReference):
            watch.account  # noqa: B018


class TestProtectAndRestrict:
    def test_protect_raises_and_deletes_nothing(self, account):
        guard = Guard.objects.create(account=account)

        with pytest.raises(ProtectedError) as info:
            account.delete()

        assert info.value.protected_objects == {guard}
        assert ["integrity", "Guard"][1] in str(info.value)
        assert Account.objects.filter(pk=account.pk).exists()
        assert all_pending() == []

    def test_protect_blocks_a_cascade_on_the_same_target(self, account):
        membership = make_membership(account)
        Guard.objects.create(account=account)

        with pytest.raises(ProtectedError):
            Account.objects.filter(pk=account.pk).delete()

        assert Account.objects.filter(pk=account.pk).exists()
        assert Membership.objects.filter(pk=membership.pk).exists()
        assert MembershipNote.objects.count() == 2
        assert all_pending() == []

    def test_protect_further_down_a_cascade_blocks_before_anything_is_deleted(self):
        # User -> Employee is CASCADE across databases; Order.buyer is PROTECT,
        # but here a protected row hangs off the cascaded Employee's database.
        user = User.objects.create(username="grace")
        employee = Employee.objects.create(user=user, name="Grace")
        Asset.objects.create(name="kept", owner=employee)  # SET_NULL: no protection
        account = Account.objects.create(name="acme")
        membership = make_membership(account)
        Guard.objects.create(account=account)

        with pytest.raises(ProtectedError):
            account.delete()
        assert Membership.objects.filter(pk=membership.pk).exists()

    def test_restrict_raises_and_deletes_nothing(self, account):
        ledger = Ledger.objects.create(account=account)

        with pytest.raises(RestrictedError) as info:
            account.delete()

        assert info.value.restricted_objects == {ledger}
        assert Account.objects.filter(pk=account.pk).exists()
        assert all_pending() == []

    def test_restrict_is_lifted_when_a_cascade_deletes_the_row_too(self, account):
        # Django's meaning: the ledger goes with its membership, which goes
        # with the account, so RESTRICT does not stand in the way.
        membership = make_membership(account, notes=0)
        Ledger.objects.create(account=account, membership=membership)

        account.delete()

        assert not Ledger.objects.exists()
        assert not Membership.objects.exists()


class TestTransactions:
    def test_rolled_back_deletion_leaves_dependents_untouched(self, account):
        membership = make_membership(account)
        key = account.pk

        with pytest.raises(RuntimeError), transaction.atomic(using="default"):
            account.delete()
            raise RuntimeError("changed my mind")

        assert Account.objects.filter(pk=key).exists()
        assert Membership.objects.filter(pk=membership.pk).exists()
        assert all_pending() == []

    def test_rolled_back_savepoint_leaves_dependents_untouched(self, account):
        membership = make_membership(account)
        doomed = Account.objects.create(name="doomed")
        make_membership(doomed)
        key = account.pk

        with transaction.atomic(using="default"):
            doomed.delete()
            with pytest.raises(RuntimeError), transaction.atomic(using="default"):
                account.delete()
                raise RuntimeError("inner rollback")

        assert Account.objects.filter(pk=key).exists()
        assert Membership.objects.filter(pk=membership.pk).exists()
        assert list(Membership.objects.values_list("account_id", flat=True)) == [key]
        assert all_pending() == []

    def test_propagation_waits_for_the_outer_commit(self, account):
        make_membership(account)

        with transaction.atomic(using="default"):
            account.delete()
            assert Membership.objects.count() == 1
            assert len(pending(source="integrity.Membership")) == 1

        assert Membership.objects.count() == 0
        assert all_pending() == []


class TestDurability:
    def test_crash_between_commit_and_propagation_is_finished_by_the_command(
        self, account, crashed
    ):
        make_membership(account)
        key = account.pk

        account.delete()
        crashed()

        assert not Account.objects.filter(pk=key).exists()
        assert Membership.objects.count() == 1
        assert {r.source_model for r in pending()} == {
            "integrity.Membership",
            "integrity.Subscription",
            "integrity.Alert",
            "integrity.Archive",
            "integrity.Lock",
            "integrity.Seal",
        }
        [row] = pending(source="integrity.Membership")
        assert (row.source_model, row.source_field, row.target_model, row.keys) == (
            "integrity.Membership",
            "account",
            "integrity.Account",
            [key],
        )

        result = run_command("propagate_deletions", older_than=0)

        assert result.exit_code == 0, result.stderr
        assert "6 pending propagation(s) applied, 3 dependent row(s) changed" in result.stdout
        assert Membership.objects.count() == 0
        assert MembershipNote.objects.count() == 0
        assert all_pending() == []

        again = run_command("propagate_deletions", older_than=0)
        assert "0 pending propagation(s) applied" in again.stdout

    def test_rows_claimed_by_a_live_process_are_left_to_it(self, account, crash_after_commit):
        make_membership(account)
        account.delete()  # its process holds the claim until the lease ends

        result = run_command("propagate_deletions")

        assert result.exit_code == 0, result.stderr
        assert "0 pending propagation(s) applied" in result.stdout
        assert "6 left to the runner that claimed them" in result.stdout
        assert len(pending(source="integrity.Membership")) == 1
        assert Membership.objects.count() == 1

    def test_older_than_leaves_young_rows_and_says_so(self, account, crashed):
        make_membership(account)
        account.delete()
        crashed()

        result = run_command("propagate_deletions", older_than=3600)

        assert result.exit_code == 0, result.stderr
        assert "0 pending propagation(s) applied" in result.stdout
        assert "6 younger than --older-than 3600s left alone" in result.stdout
        assert "run without --older-than to apply them now" in result.stdout
        assert Membership.objects.count() == 1

    def test_a_target_recreated_with_the_same_key_keeps_its_references(self, account, crashed):
        make_membership(account, notes=0)
        key = account.pk
        account.delete()
        crashed()
        Membership.objects.all().delete()  # the old dependents went some other way
        reborn = Account.objects.create(pk=key, name="reborn")
        newcomer = Membership.objects.create(account=reborn)

        run_command("propagate_deletions", older_than=0)

        assert list(Membership.objects.all()) == [newcomer]
        assert all_pending() == []

    def test_a_failing_propagation_stays_pending_and_the_delete_succeeds(
        self, account, monkeypatch, caplog
    ):
        make_membership(account)

        def fail(plans, source_db):
            raise ConnectionError("employee database is down")

        monkeypatch.setattr("crossdb.propagation._execute", fail)
        key = account.pk
        with caplog.at_level(logging.WARNING, logger="crossdb.deletion"):
            account.delete()

        assert not Account.objects.filter(pk=key).exists()
        [row] = pending(source="integrity.Membership")
        assert (row.attempts, row.last_error) == (
            1,
            "ConnectionError: employee database is down",
        )
        assert "employee database is down" in caplog.text
        result = run_command("propagate_deletions", older_than=0)
        assert result.exit_code == 1
        assert "6 failed" in result.stderr

    def test_unknown_database_is_a_usage_error(self):
        result = run_command("propagate_deletions", database=["nope"])
        assert result.exit_code == 2
        assert "--database: unknown database 'nope' (DATABASES has: " in result.stderr


class TestCost:
    @staticmethod
    def queries_to_delete(n: int) -> dict[str, int]:
        accounts = Account.objects.bulk_create(Account(name=f"a{i}") for i in range(n))
        accounts = list(Account.objects.filter(name__startswith="a"))
        Membership.objects.bulk_create(Membership(account=a) for a in accounts)
        counts: dict[str, int] = {}
        from contextlib import ExitStack

        from django.test.utils import CaptureQueriesContext

        with ExitStack() as stack:
            captured = {
                alias: stack.enter_context(CaptureQueriesContext(connections[alias]))
                for alias in connections
            }
            Account.objects.filter(name__startswith="a").delete()
        counts = {alias: len(c.captured_queries) for alias, c in captured.items()}
        assert Membership.objects.count() == 0
        return counts

    def test_queries_grow_by_batches_not_by_rows(self):
        small, large = self.queries_to_delete(20), self.queries_to_delete(420)
        # Django itself deletes in batches of 100 rows; 400 more targets may add
        # a few batches per database, never a query per row.
        assert all(large[alias] - small[alias] <= 2 * 4 for alias in small), (small, large)
        # integrity.Seal (in asset) points at Account too: checked per batch, not per row.
        assert large["asset"] - small["asset"] <= 2, (small, large)


class TestAdminCollector:
    def test_lists_cross_database_dependents_and_deletes_nothing(self, account):
        membership = make_membership(account, notes=1)
        guard = Guard.objects.create(account=account)

        collector = NestedObjects(using="default")
        collector.collect([account])

        assert membership in collector.model_objs[Membership]
        assert MembershipNote.objects.get() in collector.model_objs[MembershipNote]
        assert guard in collector.protected
        nested = collector.nested()
        assert nested[0] == account
        assert membership in nested[1]
        assert Account.objects.filter(pk=account.pk).exists()
        assert Membership.objects.count() == 1
        assert all_pending() == []


class TestValidation:
    def test_full_clean_rejects_a_missing_target(self):
        employee = Employee(user_id=424242, name="ghost")

        from django.core.exceptions import ValidationError

        with pytest.raises(ValidationError) as info:
            employee.full_clean()

        assert info.value.message_dict == {
            "user": ["user instance with id 424242 is not a valid choice."]
        }

    def test_full_clean_reads_the_target_database(self):
        user = User.objects.create(username="ada")
        employee = Employee(user=user, name="Ada")

        with assert_num_queries_per_db({"default": 1}):
            employee.clean_fields(exclude=["created", "modified"])

    def test_save_without_validation_is_one_query(self):
        with assert_num_queries_per_db({"employee": 1}):
            Employee.objects.create(user_id=424242, name="ghost")


class TestModelForm:
    @staticmethod
    def form_class():
        from django import forms

        class EmployeeForm(forms.ModelForm):
            class Meta:
                model = Employee
                fields = ["user", "name"]

        return EmployeeForm

    def test_choices_come_from_the_target_database(self):
        user = User.objects.create(username="ada")
        form = self.form_class()(data={"user": user.pk, "name": "Ada"})
        # As with Django's ForeignKey: the choice, then model validation's check.
        with assert_num_queries_per_db({"default": 2}):
            assert form.is_valid(), form.errors
        assert form.fields["user"].queryset.db == "default"

    def test_a_missing_target_is_rejected_and_nothing_is_saved(self):
        form = self.form_class()(data={"user": 424242, "name": "ghost"})
        assert not form.is_valid()
        assert form.errors["user"] == [
            "Select a valid choice. That choice is not one of the available choices."
        ]
        assert not Employee.objects.exists()


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (Subscription, -1),  # SET_DEFAULT
        (Archive, -1),  # SET(-1)
        (Alert, "fallback"),  # SET(callable)
        (Watch, "kept"),  # DO_NOTHING
    ],
)
def test_every_set_policy_through_queryset_delete(model, expected):
    fallback = Account.objects.create(name="fallback")
    doomed = [Account.objects.create(name=f"doomed{i}") for i in range(3)]
    keys = [a.pk for a in doomed]
    for account in doomed:
        model.objects.create(account=account)

    Account.objects.filter(name__startswith="doomed").delete()

    values = sorted(model.objects.values_list("account_id", flat=True))
    if expected == "fallback":
        assert values == [fallback.pk] * 3
    elif expected == "kept":
        assert values == sorted(keys)
    else:
        assert values == [expected] * 3
    assert all_pending() == []


def test_set_null_through_queryset_delete():
    bigs = [BigTarget.objects.create(name=f"b{i}") for i in range(3)]
    for big in bigs:
        Order.objects.create(big=big)

    BigTarget.objects.all().delete()

    assert list(Order.objects.values_list("big_id", flat=True)) == [None] * 3


def test_restrict_through_queryset_delete():
    account = Account.objects.create(name="acme")
    Ledger.objects.create(account=account)

    with pytest.raises(RestrictedError):
        Account.objects.all().delete()
    assert Account.objects.count() == 1
