"""
A CrossDBQuerySet used inside a query on another database: evaluated on its own one first.

``Employee`` lives in ``employee``, ``User`` and ``AutoTarget`` in ``default`` (with a stray
copy of ``people_autotarget`` in ``employee``, see ``tests/routers.py``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.test.utils import override_settings

from crossdb import CrossDatabaseJoinError, CrossDBQuerySet, TooManyKeys
from crossdb.routers import same_database
from tests.factories import EmployeeFactory, OrderFactory, UserFactory
from tests.helpers import assert_num_queries_per_db
from tests.hr.models import Employee, Order
from tests.people.models import AutoTarget

pytestmark = pytest.mark.django_db(databases="__all__")


def employees() -> CrossDBQuerySet:
    return CrossDBQuerySet(Employee)


@pytest.fixture
def cto() -> tuple[User, User]:
    """Two users; the first has an employee whose name is "CTO"."""
    ada, bob = UserFactory(username="ada"), UserFactory(username="bob")
    EmployeeFactory(user=ada, name="CTO")
    EmployeeFactory(user=bob, name="Engineer")
    return ada, bob


def usernames(queryset) -> list[str]:
    return sorted(user.username for user in queryset)


class TestUncorrelated:
    def test_in_values_subquery(self, cto):
        inner = employees().filter(name="CTO").values("user_id")
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            assert usernames(User.objects.filter(pk__in=inner)) == ["ada"]

    def test_in_queryset_of_the_model_selects_its_key(self, cto):
        # pk__in=<Employee queryset>: the employees' keys, read on employee.
        ada, _ = cto
        inner = employees().filter(name="CTO")
        mine = list(inner.values_list("pk", flat=True))
        with assert_num_queries_per_db({"employee": 1}):
            assert list(employees().filter(pk__in=inner).values_list("pk", flat=True)) == mine
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            assert usernames(User.objects.filter(pk__in=Subquery(inner.values("user")))) == [
                ada.username
            ]

    def test_exclude_and_q(self, cto):
        inner = employees().filter(name="CTO").values("user_id")
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            assert usernames(User.objects.exclude(pk__in=inner)) == ["bob"]
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            found = User.objects.filter(Q(pk__in=inner) | Q(username="bob"))
            assert usernames(found) == ["ada", "bob"]

    def test_subquery_expression(self, cto):
        inner = Subquery(employees().filter(name="CTO").values("user_id"))
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            assert usernames(User.objects.filter(pk__in=inner)) == ["ada"]

    def test_scalar_subquery_annotation(self, cto):
        name = Subquery(employees().filter(name="CTO").values("name")[:1])
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            rows = User.objects.annotate(title=name).order_by("username")
            assert [(u.username, u.title) for u in rows] == [("ada", "CTO"), ("bob", "CTO")]
        nobody = Subquery(employees().filter(name="nobody").values("name")[:1])
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            assert {u.title for u in User.objects.annotate(title=nobody)} == {None}

    def test_exists(self, cto):
        some = Exists(employees().filter(name="CTO"))
        none = Exists(employees().filter(name="nobody"))
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            assert usernames(User.objects.filter(some)) == ["ada", "bob"]
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            assert usernames(User.objects.filter(none)) == []
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            assert usernames(User.objects.filter(~none)) == ["ada", "bob"]
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            assert usernames(User.objects.exclude(some)) == []
        with assert_num_queries_per_db({"employee": 2, "default": 1}):
            flags = User.objects.annotate(a=some, b=none).values_list("a", "b")
            assert {(bool(a), bool(b)) for a, b in flags} == {(True, False)}

    def test_nothing_found(self, cto):
        inner = employees().filter(name="nobody").values("user_id")
        with assert_num_queries_per_db({"employee": 1}):
            assert list(User.objects.filter(pk__in=inner)) == []
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            assert usernames(User.objects.exclude(pk__in=inner)) == ["ada", "bob"]

    def test_evaluated_once_per_query(self, cto):
        inner = employees().filter(name="CTO").values("user_id")
        users = User.objects.filter(pk__in=inner)
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            assert users.count() == 1
        # A new query on default (the page after the count) asks again.
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            assert usernames(users) == ["ada"]

    def test_the_target_s_own_table_not_a_stray_copy(self):
        """A stray people_autotarget in ``employee`` must not be read instead of default's."""
        real = AutoTarget.objects.create(name="real")
        AutoTarget.objects.using("employee").create(pk=real.pk + 1000, name="stray")
        OrderFactory(note="real")
        OrderFactory(note="stray")
        names = CrossDBQuerySet(AutoTarget).values("name")
        with assert_num_queries_per_db({"default": 1, "employee": 1}):
            assert [o.note for o in Order.objects.filter(note__in=names)] == ["real"]

    def test_explicit_using_is_read_there(self):
        AutoTarget.objects.create(name="real")
        AutoTarget.objects.using("asset").create(name="stray")
        OrderFactory(note="real")
        OrderFactory(note="stray")
        names = CrossDBQuerySet(AutoTarget).using("asset").values("name")
        with assert_num_queries_per_db({"asset": 1, "employee": 1}):
            assert [o.note for o in Order.objects.filter(note__in=names)] == ["stray"]
        with assert_num_queries_per_db({"asset": 1, "employee": 1}):
            found = Order.objects.filter(note__in=Subquery(names))
            assert [o.note for o in found] == ["stray"]

    @override_settings(CROSSDB_MAX_LOOKUP_KEYS=1)
    def test_bounded_like_the_lookups(self, cto):
        inner = employees().values("user_id")
        with (
            assert_num_queries_per_db({"employee": 1}),
            pytest.raises(TooManyKeys, match="returned more than 1 keys"),
        ):
            list(User.objects.filter(pk__in=inner))


class TestSameDatabase:
    def test_stays_sql(self, cto):
        inner = employees().filter(name="CTO").values("pk")
        with assert_num_queries_per_db({"employee": 1}) as captured:
            assert [e.name for e in Employee.objects.filter(pk__in=inner)] == ["CTO"]
        assert captured["employee"][0]["sql"].count("SELECT") == 2

    def test_correlated_stays_sql(self, cto):
        mine = Exists(employees().filter(pk=OuterRef("pk"), name="CTO"))
        with assert_num_queries_per_db({"employee": 1}):
            assert [e.name for e in Employee.objects.filter(mine)] == ["CTO"]


@pytest.fixture
def replica() -> Iterator[str]:
    """``employee_replica``: another alias with the employee database's own settings."""
    alias = "employee_replica"
    connections.settings[alias] = {**connections["employee"].settings_dict}
    try:
        yield alias
    finally:
        del connections.settings[alias]
        if hasattr(connections._connections, alias):
            connections[alias].close()
            delattr(connections._connections, alias)


class TestTopology:
    def test_aliases(self, replica):
        assert same_database("employee", "employee")
        assert same_database("employee", replica)
        assert not same_database("employee", "default")

    def test_mirror(self, replica):
        connections.settings[replica] = {
            **connections.settings[replica],
            "NAME": "elsewhere",
            "TEST": {"MIRROR": "employee"},
        }
        assert same_database(replica, "employee")
        assert not same_database(replica, "default")

    def test_routers_reading_a_replica(self, replica):
        connections.settings[replica] = {**connections.settings[replica], "NAME": "elsewhere"}
        assert not same_database(replica, "employee")
        routers = ["tests.test_subqueries.ReplicaRouter", "crossdb.routers.CrossDBRouter"]
        with override_settings(DATABASE_ROUTERS=routers):
            assert same_database(replica, "employee")

    def test_a_replica_subquery_stays_sql(self, cto, replica):
        # Nothing may run on the replica alias (the test's databases do not include it).
        inner = employees().using(replica).filter(name="CTO").values("pk")
        with assert_num_queries_per_db({"employee": 1}):
            assert [e.name for e in Employee.objects.filter(pk__in=inner)] == ["CTO"]
        with assert_num_queries_per_db({"employee": 1}):
            assert [e.name for e in Employee.objects.filter(pk__in=Subquery(inner))] == ["CTO"]

    def test_a_replica_in_the_forward_lookup_stays_sql(self, replica):
        AutoTarget.objects.using("employee").create(pk=7000, name="here")
        order = Order.objects.create(buyer_id=7000)
        remote = AutoTarget.objects.using(replica).filter(name="here")
        with assert_num_queries_per_db({"employee": 1}):
            assert list(Order.objects.filter(buyer__in=remote)) == [order]


class ReplicaRouter:
    """Reads hr from ``employee_replica``, writes it to ``employee``."""

    def db_for_read(self, model, **hints):
        return "employee_replica" if model._meta.app_label == "hr" else None

    def db_for_write(self, model, **hints):
        return "employee" if model._meta.app_label == "hr" else None


class TestCorrelated:
    def test_exists_with_outer_ref(self, cto):
        mine = Exists(employees().filter(user_id=OuterRef("pk"), name="CTO"))
        with assert_num_queries_per_db({}), pytest.raises(CrossDatabaseJoinError) as info:
            list(User.objects.filter(mine))
        message = str(info.value)
        assert "hr.Employee (database 'employee')" in message
        assert "outer query on database 'default' through OuterRef()" in message
        assert "pk__in=Employee.objects.filter(...).values(" in message

    def test_annotation_with_outer_ref(self, cto):
        title = Subquery(employees().filter(user_id=OuterRef("pk")).values("name")[:1])
        with assert_num_queries_per_db({}), pytest.raises(CrossDatabaseJoinError):
            list(User.objects.annotate(title=title))

    def test_count_of_a_correlated_subquery(self, cto):
        count = Subquery(
            employees()
            .filter(user_id=OuterRef("pk"))
            .values("user_id")
            .annotate(n=Count("pk"))
            .values("n")
        )
        with assert_num_queries_per_db({}), pytest.raises(CrossDatabaseJoinError):
            list(User.objects.annotate(n=count))


def test_the_reverse_hint_on_a_crossdb_manager():
    """integrity.Membership (employee) has objects = CrossDBManager(); Account is in default."""
    from tests.integrity.models import Account, Membership

    acme, other = Account.objects.create(name="acme"), Account.objects.create(name="other")
    Membership.objects.create(account=acme, role="owner")
    Membership.objects.create(account=other)
    owners = Membership.objects.filter(role="owner").values("account_id")
    with assert_num_queries_per_db({"employee": 1, "default": 1}):
        assert list(Account.objects.filter(pk__in=owners)) == [acme]
