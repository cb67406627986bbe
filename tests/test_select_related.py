"""
``select_related()`` across databases: the same-database part joined in SQL, the rest loaded
in a second step with one query per database (``crossdb.select_related``).

Models in ``tests/orders``: ``Customer``, ``Profile``, ``Order`` in ``employee`` (``Order.customer``
is an ordinary ForeignKey), ``Parcel`` in ``asset``, users in ``default``.
"""

from __future__ import annotations

import threading
from typing import Any

import django
import pytest
from asgiref.sync import async_to_sync
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.core import checks
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.db import connections, models
from django.test.utils import isolate_apps, override_settings
from django.urls import path

from crossdb import (
    CrossDatabaseJoinError,
    CrossDBForeignKey,
    CrossDBManager,
    CrossDBQuerySet,
    CrossDBQuerySetMixin,
    select_related,
)
from crossdb.admin import CrossDBModelAdmin
from crossdb.checks import check_managers
from tests.helpers import assert_num_queries_per_db
from tests.hr.models import Employee
from tests.orders.models import Customer, Order, Parcel, Profile

pytestmark = [
    pytest.mark.django_db(databases="__all__"),
    pytest.mark.urls("tests.test_select_related"),
]


@pytest.fixture
def shop() -> dict[str, Any]:
    """Three users, a customer and an order each, two parcels per order; one courier."""
    users = [User.objects.create(username=f"u{i}") for i in range(3)]
    customers = [Customer.objects.create(user=u, name=f"c{i}") for i, u in enumerate(users)]
    orders = [Order.objects.create(customer=c, note=f"o{i}") for i, c in enumerate(customers)]
    parcels = [
        Parcel.objects.create(order=order, courier=customers[0] if i == 0 else None, weight=i)
        for i, order in enumerate(orders * 2)
    ]
    return {"users": users, "customers": customers, "orders": orders, "parcels": parcels}


def select_all(queryset: Any) -> Any:
    """``select_related()`` without arguments, which Django 6.1 deprecates."""
    if django.VERSION < (6, 1):
        return queryset.select_related()
    with pytest.warns(Warning, match=r"select_related\(\) with no arguments is deprecated"):
        return queryset.select_related()


def cached(instance: Any, name: str) -> bool:
    return bool(type(instance)._meta.get_field(name).is_cached(instance))


class TestTwoSteps:
    def test_forward_foreign_key(self, shop):
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            customers = list(Customer.objects.select_related("user"))
            names = [c.user.username for c in customers]
        assert names == ["u0", "u1", "u2"]

    def test_shared_and_null_keys(self, shop):
        ada = shop["users"][0]
        Customer.objects.bulk_create(Customer(user=ada, name=f"again{i}") for i in range(3))
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            customers = list(Customer.objects.filter(user=ada).select_related("user"))
            assert {id(c.user) for c in customers} == {id(customers[0].user)}
        assert len(customers) == 4
        with assert_num_queries_per_db({"asset": 1}):
            parcels = list(Parcel.objects.filter(courier=None).select_related("courier"))
            assert [p.courier for p in parcels] == [None] * 5

    def test_one_to_one_sets_both_ends(self, shop):
        for user in shop["users"]:
            Profile.objects.create(user=user, bio=user.username)
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            profiles = list(Profile.objects.select_related("user"))
            assert [p.user.profile.bio for p in profiles] == ["u0", "u1", "u2"]

    def test_reverse_one_to_one(self, shop):
        Profile.objects.create(user=shop["users"][1], bio="b")
        users = CrossDBQuerySet(User).order_by("pk").select_related("profile")
        with assert_num_queries_per_db({"default": 1, "employee": 1}):
            profiles = [getattr(u, "profile", None) for u in users]
        assert [p and p.bio for p in profiles] == [None, "b", None]

    def test_nested_across_three_databases(self, shop):
        # asset -> employee (orders joined to their customers) -> default.
        with assert_num_queries_per_db({"asset": 1, "employee": 1, "default": 1}) as captured:
            parcels = list(Parcel.objects.order_by("pk").select_related("order__customer__user"))
            names = [p.order.customer.user.username for p in parcels]
        assert names == ["u0", "u1", "u2"] * 2
        assert "JOIN" in captured["employee"][0]["sql"].upper()
        assert "JOIN" not in captured["asset"][0]["sql"].upper()

    def test_two_cross_database_hops_in_a_row(self, shop):
        with assert_num_queries_per_db({"asset": 1, "employee": 1, "default": 1}):
            parcels = list(Parcel.objects.order_by("pk").select_related("courier__user"))
            couriers = [p.courier and p.courier.user.username for p in parcels]
        assert couriers == ["u0", None, None, None, None, None]

    def test_same_database_prefix_stays_a_join(self, shop):
        with assert_num_queries_per_db({"employee": 1, "default": 1}) as captured:
            orders = list(Order.objects.order_by("pk").select_related("customer__user"))
            names = [o.customer.user.username for o in orders]
        assert names == ["u0", "u1", "u2"]
        assert "JOIN" in captured["employee"][0]["sql"].upper()
        assert "auth_user" not in captured["employee"][0]["sql"]

    def test_several_paths_and_prefetch_related(self, shop):
        group = Group.objects.create(name="g")
        shop["users"][0].groups.add(group)
        queryset = (
            Parcel.objects.order_by("pk")
            .select_related("order__customer__user", "courier")
            .prefetch_related("order__customer__user__groups")
        )
        with assert_num_queries_per_db({"asset": 1, "employee": 2, "default": 2}):
            parcels = list(queryset)
            groups = [list(p.order.customer.user.groups.all()) for p in parcels]
            [p.courier for p in parcels]
        assert groups == [[group], [], [], [group], [], []]

    def test_get_first_and_known_related_objects(self, shop):
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            assert Customer.objects.select_related("user").get(name="c1").user.username == "u1"
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            assert (
                Customer.objects.select_related("user").order_by("-pk").first().user.username
                == "u2"
            )  # type: ignore[union-attr]
        user = shop["users"][2]
        with assert_num_queries_per_db({"employee": 1}):
            assert [c.user for c in user.customers.select_related("user")] == [user]

    def test_the_rows_are_those_without_select_related(self, shop):
        # An INNER JOIN would drop the dangling key's row; the second step keeps it.
        orphan = Customer.objects.create(user_id=987654, name="orphan")
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            customers = list(Customer.objects.order_by("pk").select_related("user"))
        assert customers == list(Customer.objects.order_by("pk"))
        with assert_num_queries_per_db({}), pytest.raises(Customer.user.DanglingReference):
            customers[-1].user  # noqa: B018
        assert customers[-1] == orphan

    def test_count_exists_values_and_update_ignore_it(self, shop):
        queryset = Customer.objects.select_related("user")
        with assert_num_queries_per_db({"employee": 4}):
            assert queryset.count() == 3
            assert queryset.exists()
            assert list(queryset.order_by("pk").values_list("name", flat=True)) == [
                "c0",
                "c1",
                "c2",
            ]
            assert queryset.filter(name="c0").update(name="c0") == 1

    def test_none_clears(self, shop):
        with assert_num_queries_per_db({"employee": 1}):
            customers = list(Customer.objects.select_related("user").select_related(None))
        assert not any(cached(c, "user") for c in customers)

    def test_async_iterator(self, shop):
        async def load() -> list[str]:
            queryset = Customer.objects.order_by("pk").select_related("user")
            return [c.user.username async for c in queryset.aiterator(chunk_size=2)]

        with assert_num_queries_per_db({"employee": 1, "default": 2}):
            assert async_to_sync(load)() == ["u0", "u1", "u2"]


class TestWithoutArguments:
    def test_joins_what_django_would_minus_cross_database_fields(self, shop):
        with assert_num_queries_per_db({"employee": 1}) as captured:
            orders = list(select_all(Order.objects.order_by("pk")))
        assert [o.customer.name for o in orders] == ["c0", "c1", "c2"]
        assert "JOIN" in captured["employee"][0]["sql"].upper()
        assert not any(cached(o.customer, "user") for o in orders)

    def test_on_a_model_with_a_non_null_cross_database_field(self, shop):
        with assert_num_queries_per_db({"employee": 1}):
            customers = list(select_all(Customer.objects))
        assert len(customers) == 3 and not any(cached(c, "user") for c in customers)

    def test_nullable_fields_and_deferred_ones(self, shop):
        with assert_num_queries_per_db({"asset": 1}):
            assert len(select_all(Parcel.objects)) == 6
        with assert_num_queries_per_db({"employee": 1}):
            orders = list(select_all(Order.objects).only("note"))
        assert len(orders) == 3

    def test_never_raises_even_with_the_raise_setting(self, shop):
        with override_settings(CROSSDB_SELECT_RELATED="raise"):
            assert len(select_all(Customer.objects)) == 3


class TestIterator:
    @pytest.fixture(autouse=True)
    def small_chunks(self, monkeypatch):
        monkeypatch.setattr(select_related, "CHUNK_SIZE", 2)

    def test_without_chunk_size_one_query_per_chunk(self, shop):
        iterator = Customer.objects.order_by("pk").select_related("user").iterator()
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            first = next(iterator)
            assert first.user.username == "u0"
        with assert_num_queries_per_db({"default": 1}):
            rest = list(iterator)
        assert [c.user.username for c in rest] == ["u1", "u2"]

    def test_with_chunk_size_and_prefetch_related(self, shop):
        queryset = Customer.objects.order_by("pk").select_related("user").prefetch_related("orders")
        with assert_num_queries_per_db({"employee": 1 + 3, "default": 3}):
            customers = list(queryset.iterator(chunk_size=1))
            names = [(c.user.username, [o.note for o in c.orders.all()]) for c in customers]
        assert names == [("u0", ["o0"]), ("u1", ["o1"]), ("u2", ["o2"])]

    def test_nested(self, shop):
        queryset = Parcel.objects.order_by("pk").select_related("order__customer__user")
        with assert_num_queries_per_db({"asset": 1, "employee": 2, "default": 2}):
            names = [p.order.customer.user.username for p in queryset.iterator(chunk_size=3)]
        assert names == ["u0", "u1", "u2"] * 2

    def test_no_read_ahead_inside_a_transaction(self, shop, monkeypatch):
        monkeypatch.setattr(select_related, "read_ahead", None)  # would fail if called
        assert len(list(Customer.objects.select_related("user").iterator())) == 3


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_iterator_reads_ahead_between_servers_outside_transactions(monkeypatch):
    users = [User.objects.create(username=f"r{i}") for i in range(5)]
    for user in users:
        Customer.objects.create(user=user, name=user.username)
    calls: list[str] = []
    read_ahead = select_related.read_ahead

    def spy(*args: Any) -> Any:
        calls.append(threading.current_thread().name)
        return read_ahead(*args)

    monkeypatch.setattr(select_related, "read_ahead", spy)
    iterator = Customer.objects.order_by("pk").select_related("user").iterator(chunk_size=2)
    names = [c.user.username for c in iterator]
    assert names == [u.username for u in users]
    servers = {connections[a].vendor for a in ("employee", "default")} == {"postgresql", "mysql"}
    assert calls == (["MainThread"] if servers else [])
    assert not [t for t in threading.enumerate() if t.name.startswith("crossdb-select-related")]


class TestRefusals:
    def test_raise_setting(self, shop):
        with override_settings(CROSSDB_SELECT_RELATED="raise"):
            with assert_num_queries_per_db({}), pytest.raises(CrossDatabaseJoinError):
                list(Customer.objects.select_related("user"))
            with assert_num_queries_per_db({"employee": 1}):
                list(Order.objects.select_related("customer"))

    def test_unknown_setting(self, shop):
        with (
            override_settings(CROSSDB_SELECT_RELATED="join"),
            pytest.raises(ImproperlyConfigured, match="'prefetch' or 'raise'"),
        ):
            list(Customer.objects.select_related("user"))

    def test_other_managers_keep_the_error(self):
        # hr.Employee's manager is django-model-utils' InheritanceManager.
        with assert_num_queries_per_db({}), pytest.raises(CrossDatabaseJoinError):
            list(Employee.objects.select_related("user"))


class TestInvalidNames:
    """Django's FieldError, in Django's words, before any database is read."""

    def test_unknown_name_beyond_a_cross_database_hop(self, shop):
        message = "Invalid field name(s) given in select_related: 'nothing'. Choices are: user"
        with assert_num_queries_per_db({}), pytest.raises(FieldError) as raised:
            list(Parcel.objects.select_related("order__customer__nothing"))
        assert str(raised.value) == message

    def test_non_relational_name_beyond_a_cross_database_hop(self, shop):
        message = "Non-relational field given in select_related: 'note'. Choices are: customer"
        with assert_num_queries_per_db({}), pytest.raises(FieldError) as raised:
            list(Parcel.objects.select_related("order__note"))
        assert str(raised.value) == message

    def test_under_iterator_too(self, shop):
        with assert_num_queries_per_db({}), pytest.raises(FieldError, match="'nothing'"):
            next(Parcel.objects.select_related("courier__user__nothing").iterator())


# The admin --------------------------------------------------------------------------------

site = admin.AdminSite(name="select_related_admin")


@admin.register(Customer, site=site)
class CustomerAdmin(CrossDBModelAdmin):
    list_display = ["name"]
    list_select_related = ["user"]


urlpatterns = [path("sr-admin/", site.urls)]


def test_admin_list_select_related(shop, admin_client):
    # default: the session, the user, then the customers' users in one query.
    with assert_num_queries_per_db({"default": 3, "employee": 3}):
        response = admin_client.get("/sr-admin/orders/customer/")
    assert response.status_code == 200
    customers = response.context["cl"].result_list
    assert [c.user.username for c in customers] == ["u2", "u1", "u0"]


@override_settings(CROSSDB_SELECT_RELATED="raise")
def test_admin_list_select_related_with_the_raise_setting(shop, admin_client):
    # The crossing path is left out: the page neither raises nor loads the users.
    with assert_num_queries_per_db({"default": 2, "employee": 3}):
        response = admin_client.get("/sr-admin/orders/customer/")
    assert response.status_code == 200
    assert not any(cached(c, "user") for c in response.context["cl"].result_list)


# The check --------------------------------------------------------------------------------


def test_w010_default_manager_without_the_mixin():
    with isolate_apps("tests.orders") as apps:
        messages = w010_messages(apps)
    assert messages == [
        checks.Warning(
            "orders.Plain has cross-database fields (user), but its default manager 'objects' "
            "returns a QuerySet, which raises CrossDatabaseJoinError for "
            "select_related('user') and cannot filter through the relation.",
            hint="Set objects = CrossDBManager() on the model (from crossdb), or mix "
            "crossdb.CrossDBQuerySetMixin into the manager's QuerySet class.",
            obj=apps.get_model("orders", "Plain"),
            id="crossdb.W010",
        )
    ]


def w010_messages(apps: Any) -> list[checks.CheckMessage]:
    class Plain(models.Model):
        user = CrossDBForeignKey("auth.User", models.DO_NOTHING)

        class Meta:
            app_label = "orders"

    class OwnQuerySet(CrossDBQuerySetMixin, models.QuerySet):  # type: ignore[type-arg]
        pass

    class Mixed(models.Model):
        user = CrossDBForeignKey("auth.User", models.DO_NOTHING)

        objects = models.Manager.from_queryset(OwnQuerySet)()

        class Meta:
            app_label = "orders"

    class Managed(models.Model):
        user = CrossDBForeignKey("auth.User", models.DO_NOTHING)

        objects = CrossDBManager()

        class Meta:
            app_label = "orders"

    class NoRelation(models.Model):
        class Meta:
            app_label = "orders"

    return check_managers(app_configs=apps.get_app_configs())
