"""Filtering through a relation across databases, the Rails disable_joins way."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.lookups import GreaterThan
from django.test.utils import override_settings

from crossdb import CrossDatabaseJoinError, CrossDBQuerySet, TooManyKeys
from tests.helpers import assert_num_queries_per_db
from tests.hr.models import Employee
from tests.integrity.models import Account, Membership
from tests.inventory.models import Asset

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def people() -> dict[str, Employee]:
    ada = User.objects.create(username="ada", is_staff=True)
    alan = User.objects.create(username="alan")
    bob = User.objects.create(username="bob", is_staff=True)
    return {
        "ada": Employee.objects.create(user=ada, name="Ada"),
        "alan": Employee.objects.create(user=alan, name="Alan"),
        "bob": Employee.objects.create(user=bob, name="Bob"),
    }


def qs() -> CrossDBQuerySet:
    return CrossDBQuerySet(Employee)


def names(queryset) -> list[str]:
    return sorted(e.name for e in queryset)


class TestSpanningLookups:
    def test_filter(self, people):
        with assert_num_queries_per_db({"default": 1, "employee": 1}):
            assert names(qs().filter(user__username__startswith="a")) == ["Ada", "Alan"]

    def test_exclude(self, people):
        with assert_num_queries_per_db({"default": 1, "employee": 1}):
            assert names(qs().exclude(user__username__startswith="a")) == ["Bob"]

    def test_q_objects(self, people):
        query = Q(user__username="ada") | Q(name="Bob")
        with assert_num_queries_per_db({"default": 1, "employee": 1}):
            assert names(qs().filter(query)) == ["Ada", "Bob"]
        assert names(qs().filter(~Q(user__is_staff=True))) == ["Alan"]

    def test_conditions_in_one_call_mean_the_same_target(self, people):
        assert names(qs().filter(user__is_staff=True, user__username__startswith="a")) == ["Ada"]
        # Two calls, two conditions, still one user each (a forward relation is single-valued).
        assert names(qs().filter(user__is_staff=True).filter(user__username="bob")) == ["Bob"]

    def test_no_match_costs_no_query_on_the_source(self, people):
        with assert_num_queries_per_db({"default": 1}):
            assert names(qs().filter(user__username="nobody")) == []

    def test_two_hops_across_three_databases(self, people):
        Asset.objects.create(name="laptop", owner=people["ada"])
        Asset.objects.create(name="phone", owner=people["bob"])
        assets = CrossDBQuerySet(Asset)
        with assert_num_queries_per_db({"default": 1, "employee": 1, "asset": 1}):
            assert [a.name for a in assets.filter(owner__user__username="bob")] == ["phone"]

    def test_key_lookups_stay_local(self, people):
        ada = people["ada"]
        with assert_num_queries_per_db({"employee": 1}):
            assert names(qs().filter(user__id=ada.user_id)) == ["Ada"]
        with assert_num_queries_per_db({"employee": 1}):
            assert names(qs().filter(user__pk__in=[ada.user_id])) == ["Ada"]

    def test_get(self, people):
        with assert_num_queries_per_db({"default": 1, "employee": 1}):
            assert qs().get(user__username="alan") == people["alan"]

    def test_manager_and_combined_manager(self):
        account = Account.objects.create(name="acme")
        membership = Membership.objects.create(account=account)
        assert list(Membership.objects.filter(account__name="acme")) == [membership]
        assert list(Membership.combined.filter(account__name="acme")) == [membership]

    @override_settings(CROSSDB_MAX_LOOKUP_KEYS=2)
    def test_a_cap_refuses_unbounded_key_lists(self, people):
        assert names(qs().filter(user__username__startswith="a")) == ["Ada", "Alan"]
        with (
            assert_num_queries_per_db({"default": 1}),
            pytest.raises(TooManyKeys, match="returned more than 2 keys"),
        ):
            list(qs().filter(user__is_active=True))

    def test_invalid_kwargs_are_refused(self):
        with pytest.raises((TypeError, ValueError)):
            qs().filter(_connector="nope")


class TestExpressionsInFilters:
    """Q children that are expressions, not (key, value) pairs, pass through unchanged."""

    def test_exists(self, people):
        named_ada = Exists(qs().filter(pk=OuterRef("pk"), name="Ada"))
        with assert_num_queries_per_db({"employee": 1}):
            assert names(qs().filter(named_ada)) == ["Ada"]
        with assert_num_queries_per_db({"employee": 1}):
            assert names(qs().exclude(named_ada)) == ["Alan", "Bob"]
        with assert_num_queries_per_db({"employee": 1}):
            assert names(qs().filter(~named_ada)) == ["Alan", "Bob"]

    def test_q_holding_expressions(self, people):
        named_ada = Exists(qs().filter(pk=OuterRef("pk"), name="Ada"))
        with assert_num_queries_per_db({"employee": 1}):
            assert names(qs().filter(Q(named_ada))) == ["Ada"]
        with assert_num_queries_per_db({"employee": 1}):
            assert names(qs().filter(Q(named_ada) | Q(name="Bob"))) == ["Ada", "Bob"]
        # Mixed with a condition across databases, rewritten beside the expression.
        with assert_num_queries_per_db({"default": 1, "employee": 1}):
            found = qs().filter(named_ada | Q(user__username="bob"))
            assert names(found) == ["Ada", "Bob"]
        with assert_num_queries_per_db({"default": 1, "employee": 1}):
            found = qs().filter(Q(user__is_staff=True) & ~named_ada)
            assert names(found) == ["Bob"]

    def test_conditional_expression(self, people):
        after_ada = GreaterThan(F("pk"), people["ada"].pk)
        with assert_num_queries_per_db({"employee": 1}):
            assert names(qs().filter(after_ada)) == ["Alan", "Bob"]
        with assert_num_queries_per_db({"default": 1, "employee": 1}):
            assert names(qs().filter(after_ada, user__is_staff=True)) == ["Bob"]


class TestRefusedJoins:
    def test_select_related(self, people):
        with assert_num_queries_per_db({}), pytest.raises(CrossDatabaseJoinError) as info:
            list(Employee.objects.select_related("user"))
        message = str(info.value)
        assert "hr.Employee.user points to auth.User in another database" in message
        assert "prefetch_related('user')" in message

    def test_order_by_across_databases(self, people):
        with assert_num_queries_per_db({}), pytest.raises(CrossDatabaseJoinError):
            list(qs().order_by("user__username"))

    def test_plain_queryset_filter_through_the_relation(self, people):
        with assert_num_queries_per_db({}), pytest.raises(CrossDatabaseJoinError):
            list(Employee.objects.filter(user__username="ada"))

    def test_reverse_join(self, people):
        with assert_num_queries_per_db({}), pytest.raises(CrossDatabaseJoinError):
            list(User.objects.filter(employees__name="Ada"))
