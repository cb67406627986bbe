"""Batched loading across databases: prefetch, fetch modes, the N+1 guard."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Group, User
from django.db import connections, models
from django.db.models import Prefetch, prefetch_related_objects
from django.test.utils import CaptureQueriesContext, override_settings

import crossdb
from crossdb import (
    LazyLoadForbidden,
    aprefetch_cross_db,
    batching,
    forbid_lazy_loads,
    prefetch_cross_db,
)
from tests.helpers import assert_num_queries_per_db
from tests.hr.models import Badge, Employee, Order
from tests.integrity.models import Account, Bin, Membership, Shelf
from tests.inventory.models import Asset
from tests.people.models import AutoTarget

pytestmark = pytest.mark.django_db(databases="__all__")

needs_setlimit = pytest.mark.skipif(
    not hasattr(sqlite3.Connection, "setlimit"),
    reason="Python < 3.11 can neither read nor lower SQLite's variable limit",
)


def employees(n: int, *, shared_user: bool = False) -> list[Employee]:
    users = User.objects.bulk_create(User(username=f"u{i}") for i in range(1 if shared_user else n))
    users = list(User.objects.order_by("pk"))
    Employee.objects.bulk_create(
        Employee(user_id=users[0 if shared_user else i].pk, name=f"e{i}") for i in range(n)
    )
    return list(Employee.objects.order_by("pk"))


class TestPrefetch:
    def test_prefetch_related_costs_one_query_per_database(self):
        employees(5)
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            loaded = list(Employee.objects.prefetch_related("user"))
            names = [e.user.username for e in loaded]
        assert names == [f"u{i}" for i in range(5)]

    def test_prefetch_cross_db_function(self):
        instances = employees(4)
        with assert_num_queries_per_db({"default": 1}):
            result = prefetch_cross_db(instances, "user")
            assert [e.user.username for e in result] == ["u0", "u1", "u2", "u3"]
        assert result == instances

    def test_queryset_method_and_a_combined_manager(self):
        account = Account.objects.create(name="acme")
        Membership.objects.create(account=account)
        for manager in (Membership.objects, Membership.combined):
            with assert_num_queries_per_db({"employee": 1, "default": 1}):
                [membership] = manager.prefetch_cross_db("account")
                assert membership.account == account
        # The model-utils half of the combined queryset still works.
        assert list(Membership.combined.select_subclasses()) == [Membership.objects.get()]

    def test_prefetch_object_with_queryset_and_to_attr(self):
        employees(3)
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            loaded = list(
                Employee.objects.prefetch_related(
                    Prefetch("user", queryset=User.objects.filter(username="u1"), to_attr="u")
                )
            )
        assert [e.u.username if e.u else None for e in loaded] == [None, "u1", None]

    def test_nested_lookup_into_an_ordinary_relation(self):
        group = Group.objects.create(name="staff")
        for employee in employees(3):
            employee.user.groups.add(group)
        with assert_num_queries_per_db({"employee": 1, "default": 2}):
            loaded = list(Employee.objects.prefetch_related("user__groups"))
            assert [[g.name for g in e.user.groups.all()] for e in loaded] == [["staff"]] * 3

    def test_nested_lookup_across_three_databases(self):
        for employee in employees(3):
            Asset.objects.create(name=f"a-{employee.name}", owner=employee)
        with assert_num_queries_per_db({"asset": 1, "employee": 1, "default": 1}):
            loaded = list(Asset.objects.order_by("pk").prefetch_related("owner__user"))
            assert [a.owner.user.username for a in loaded] == ["u0", "u1", "u2"]

    def test_all_null_references_cost_no_query(self):
        Order.objects.create(buyer=None)
        Order.objects.create(buyer=None)
        with assert_num_queries_per_db({"employee": 1}):
            assert [o.buyer for o in Order.objects.prefetch_related("buyer")] == [None, None]

    def test_a_shared_target_is_loaded_once(self):
        employees(4, shared_user=True)
        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            loaded = list(Employee.objects.prefetch_related("user"))
        assert len({id(e.user) for e in loaded}) == 1

    def test_dangling_reference_raises_after_prefetch_without_a_query(self):
        employees(1)
        Employee.objects.create(user_id=987654, name="ghost")
        loaded = list(Employee.objects.order_by("pk").prefetch_related("user"))
        with assert_num_queries_per_db({}):
            assert loaded[0].user.username == "u0"
            with pytest.raises(Employee.user.DanglingReference, match="987654"):
                loaded[1].user  # noqa: B018

    def test_one_to_one_sets_the_reverse_cache(self):
        user = User.objects.create(username="ada")
        Badge.objects.create(user=user, title="t")
        [badge] = Badge.objects.prefetch_related("user")
        with assert_num_queries_per_db({}):
            assert badge.user.badge is badge


class TestChunks:
    @staticmethod
    def sparse_employees(n: int) -> None:
        """Employees of every third user: keys too sparse for a range query."""
        User.objects.bulk_create(User(username=f"s{i}") for i in range(3 * n))
        users = list(User.objects.order_by("pk"))[::3]
        Employee.objects.bulk_create(Employee(user_id=u.pk, name=u.username) for u in users)

    @override_settings(CROSSDB_PREFETCH_BATCH_SIZE=10)
    def test_batch_size_setting_splits_the_keys(self):
        self.sparse_employees(25)
        with assert_num_queries_per_db({"employee": 1, "default": 3}):
            loaded = list(Employee.objects.prefetch_related("user"))
            assert len({e.user.pk for e in loaded}) == 25

    def test_dense_integer_keys_are_fetched_by_range(self):
        instances = employees(30)
        unreferenced = str(instances[10].user_id)
        instances[10].delete()  # its user stays, in the range, referenced by nobody
        with CaptureQueriesContext(connections["default"]) as queries:
            loaded = list(Employee.objects.order_by("pk").prefetch_related("user__groups"))
        users_sql, groups_sql = [q["sql"] for q in queries.captured_queries]
        assert " IN (" not in users_sql
        # The row in range but not referenced is dropped before the nested prefetch.
        keys = groups_sql.split(" IN (")[1].split(")")[0].split(", ")
        assert len(keys) == 29 and unreferenced not in keys
        assert [e.user.username for e in loaded] == [f"u{i}" for i in range(30) if i != 10]

    @staticmethod
    def sparse_bins() -> None:
        Shelf.objects.bulk_create(Shelf(label=f"s{i}") for i in range(360))
        shelves = list(Shelf.objects.order_by("pk"))[::3]  # sparse: no range query
        Bin.objects.bulk_create(Bin(shelf_id=s.pk) for s in shelves)

    @contextmanager
    def variable_limit(self, limit: int) -> Iterator[None]:
        connection = connections["asset"]
        connection.ensure_connection()
        previous = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        connection.connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
        try:
            yield
        finally:
            connection.connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, previous)

    @needs_setlimit
    def test_sqlite_keys_are_one_json_parameter(self):
        self.sparse_bins()
        with (
            self.variable_limit(50),
            CaptureQueriesContext(connections["asset"]) as queries,
            assert_num_queries_per_db({"employee": 1, "asset": 1}),
        ):
            loaded = list(Bin.objects.prefetch_related("shelf"))
            assert len({b.shelf.label for b in loaded}) == 120
        assert "json_each(" in queries.captured_queries[0]["sql"]

    @needs_setlimit
    def test_sqlite_variable_limit_without_json(self, monkeypatch):
        """An SQLite without json_each() gets IN lists cut at its real variable limit."""
        monkeypatch.setattr(batching, "keys_lookup", lambda alias: None)
        self.sparse_bins()
        with self.variable_limit(50), assert_num_queries_per_db({"employee": 1, "asset": 3}):
            loaded = list(Bin.objects.prefetch_related("shelf"))
            assert len({b.shelf.label for b in loaded}) == 120


def test_a_keys_lookup_must_say_how_it_sends_its_keys():
    class Incomplete(batching.KeysParameter):
        lookup_name = "incomplete"

    with pytest.raises(TypeError, match="abstract"):
        Incomplete(models.F("id"), [1, 2])


class ShardRouter:
    """Orders whose note starts with 'e:' keep their buyer in the employee database."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        instance = hints.get("instance")
        if model is AutoTarget and isinstance(instance, Order) and instance.note.startswith("e:"):
            return "employee"
        return None


def test_same_key_in_two_databases_is_matched_per_database():
    from django.db import router
    from django.utils.module_loading import import_string

    AutoTarget.objects.using("default").create(pk=1, name="in default")
    AutoTarget.objects.using("employee").create(pk=1, name="in employee")
    Order.objects.create(buyer_id=1, note="d:")
    Order.objects.create(buyer_id=1, note="e:")
    saved = router.routers
    router.routers = [ShardRouter(), import_string("crossdb.routers.CrossDBRouter")()]
    try:
        with assert_num_queries_per_db({"employee": 2, "default": 1}):
            loaded = list(Order.objects.order_by("note").prefetch_related("buyer"))
            assert [o.buyer.name for o in loaded] == ["in default", "in employee"]
    finally:
        router.routers = saved


class TestReverse:
    def test_reverse_manager_prefetch(self):
        users = User.objects.bulk_create(User(username=f"r{i}") for i in range(3))
        users = list(User.objects.order_by("pk"))
        for user in users:
            Employee.objects.create(user=user, name=f"{user.username}-a")
            Employee.objects.create(user=user, name=f"{user.username}-b")
        with assert_num_queries_per_db({"default": 1, "employee": 1}):
            loaded = list(User.objects.order_by("pk").prefetch_related("employees"))
            assert [sorted(e.name for e in u.employees.all()) for u in loaded] == [
                [f"r{i}-a", f"r{i}-b"] for i in range(3)
            ]
        with assert_num_queries_per_db({"employee": 1}):
            prefetch_cross_db(users, "employees")
            assert sum(len(u.employees.all()) for u in users) == 6

    def test_reverse_one_to_one_prefetch(self):
        ada = User.objects.create(username="ada")
        User.objects.create(username="bob")
        Badge.objects.create(user=ada, title="gold")
        with assert_num_queries_per_db({"default": 1, "employee": 1}):
            loaded = list(User.objects.order_by("username").prefetch_related("badge"))
        assert loaded[0].badge.title == "gold"
        with pytest.raises(User.badge.RelatedObjectDoesNotExist):
            loaded[1].badge  # noqa: B018


class TestForbidLazyLoads:
    def test_forward_lazy_load_raises_naming_the_lookup(self):
        [employee] = employees(1)
        employee = Employee.objects.get(pk=employee.pk)
        with forbid_lazy_loads(), pytest.raises(LazyLoadForbidden) as info:
            employee.user  # noqa: B018
        assert str(info.value) == (
            "Lazy load of hr.Employee.user across databases inside forbid_lazy_loads(). "
            "Load it up front with .prefetch_related('user') or "
            "prefetch_cross_db(..., 'user')."
        )

    def test_reverse_manager_all_raises(self):
        user = User.objects.create(username="ada")
        with forbid_lazy_loads(), pytest.raises(LazyLoadForbidden, match=r"auth\.User\.employees"):
            user.employees.all()

    def test_prefetched_rows_pass(self):
        employees(2)
        with forbid_lazy_loads():
            loaded = list(Employee.objects.prefetch_related("user"))
            assert [e.user.username for e in loaded] == ["u0", "u1"]
            users = list(User.objects.prefetch_related("employees"))
            assert [len(u.employees.all()) for u in users] == [1, 1]

    def test_guard_is_reset_afterwards(self):
        [employee] = employees(1)
        with forbid_lazy_loads():
            pass
        assert Employee.objects.get(pk=employee.pk).user.username == "u0"

    def test_exported_at_top_level(self):
        assert crossdb.forbid_lazy_loads is forbid_lazy_loads


@pytest.mark.skipif(not hasattr(models, "FETCH_PEERS"), reason="fetch modes are new in Django 6.1")
class TestFetchModes:
    def test_fetch_peers_loads_all_peers_in_one_query_per_database(self):
        employees(5)
        loaded = list(Employee.objects.fetch_mode(models.FETCH_PEERS).order_by("pk"))
        with assert_num_queries_per_db({"default": 1}):
            assert [e.user.username for e in loaded] == [f"u{i}" for i in range(5)]

    def test_raise_refuses_the_lazy_load(self):
        from django.core.exceptions import FieldFetchBlocked

        employees(1)
        [employee] = Employee.objects.fetch_mode(models.FETCH_RAISE)
        with assert_num_queries_per_db({}), pytest.raises(FieldFetchBlocked):
            employee.user  # noqa: B018


class TestAsync:
    def test_aprefetch_cross_db_in_async_code(self):
        employees(3)

        async def load() -> list[str]:
            loaded = [e async for e in Employee.objects.order_by("pk")]
            await aprefetch_cross_db(loaded, "user")
            # Cached by the prefetch: attribute access runs no query, so no
            # SynchronousOnlyOperation either.
            return [e.user.username for e in loaded]

        assert async_to_sync(load)() == ["u0", "u1", "u2"]


def test_prefetch_related_objects_on_a_mixed_list():
    instances = employees(2)
    Employee.objects.create(user_id=instances[0].user_id, name="again")
    mixed = list(Employee.objects.order_by("pk"))
    with assert_num_queries_per_db({"default": 1}):
        prefetch_related_objects(mixed, "user")
    assert mixed[2].user is mixed[0].user


def test_async_related_manager_methods_use_the_source_database():
    user = User.objects.create(username="ada")

    async def work() -> tuple[str, int, bool]:
        created = await user.employees.acreate(name="Ada")
        _, was_created = await user.employees.aget_or_create(name="Ada")
        return created._state.db, await user.employees.acount(), was_created

    assert async_to_sync(work)() == ("employee", 1, False)


class CountingRouter:
    calls = 0
    routes_ignore_hints = False

    def db_for_read(self, model: Any, **hints: Any) -> None:
        if model is User:
            CountingRouter.calls += 1


@pytest.mark.parametrize(("ignores_hints", "expected_calls"), [(True, 1), (False, 5)])
def test_routers_are_asked_once_per_batch_unless_they_may_read_the_hint(
    ignores_hints, expected_calls, monkeypatch
):
    from django.db import router

    instances = employees(5)
    monkeypatch.setattr(CountingRouter, "routes_ignore_hints", ignores_hints)
    monkeypatch.setattr(CountingRouter, "calls", 0)
    monkeypatch.setattr(router, "routers", [CountingRouter(), *router.routers])

    prefetch_cross_db(instances, "user")

    assert CountingRouter.calls == expected_calls
    assert [e.user.username for e in instances] == [f"u{i}" for i in range(5)]
