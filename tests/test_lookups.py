"""Filtering the source model by its cross-database field, and refusing real joins."""

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldError
from django.db.models import Count, Q

from crossdb import CrossDatabaseJoinError
from tests.factories import EmployeeFactory, OrderFactory, UserFactory
from tests.helpers import assert_num_queries_per_db
from tests.hr.models import Employee, Order
from tests.people.models import AutoTarget

pytestmark = pytest.mark.django_db(databases="__all__")

User = get_user_model()


@pytest.fixture
def staff():
    """Two users with an employee each, and a third employee of someone else."""
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    return alice, bob, EmployeeFactory(user=alice), EmployeeFactory(user=bob), EmployeeFactory()


def pks(queryset):
    return sorted(obj.pk for obj in queryset)


# By instance or key: no query on the target database ------------------------------------


def test_filter_by_instance(staff):
    alice, _, alice_employee, _, _ = staff
    with assert_num_queries_per_db({"employee": 1}):
        assert list(Employee.objects.filter(user=alice)) == [alice_employee]


def test_filter_by_key(staff):
    alice, _, alice_employee, _, _ = staff
    with assert_num_queries_per_db({"employee": 1}):
        assert list(Employee.objects.filter(user=alice.pk)) == [alice_employee]
    with assert_num_queries_per_db({"employee": 1}):
        assert list(Employee.objects.filter(user_id=alice.pk)) == [alice_employee]


def test_filter_by_a_key_with_no_row():
    with assert_num_queries_per_db({"employee": 1}):
        assert not Employee.objects.filter(user=7).exists()


def test_filter_by_target_primary_key_needs_no_join(staff):
    alice, _, alice_employee, _, _ = staff
    with assert_num_queries_per_db({"employee": 1}):
        assert list(Employee.objects.filter(user__pk=alice.pk)) == [alice_employee]
    with assert_num_queries_per_db({"employee": 1}):
        assert list(Employee.objects.filter(user__id__in=[alice.pk])) == [alice_employee]


def test_filter_in_instances_and_keys(staff):
    alice, bob, alice_employee, bob_employee, _ = staff
    expected = pks([alice_employee, bob_employee])
    with assert_num_queries_per_db({"employee": 1}):
        assert pks(Employee.objects.filter(user__in=[alice, bob])) == expected
    with assert_num_queries_per_db({"employee": 1}):
        assert pks(Employee.objects.filter(user__in=[alice.pk, bob.pk])) == expected


def test_isnull():
    with_buyer, without_buyer = OrderFactory(), OrderFactory(buyer=None)
    with assert_num_queries_per_db({"employee": 1}):
        assert list(Order.objects.filter(buyer__isnull=True)) == [without_buyer]
    with assert_num_queries_per_db({"employee": 1}):
        assert list(Order.objects.filter(buyer__isnull=False)) == [with_buyer]


def test_exclude(staff):
    alice, _, _, bob_employee, other_employee = staff
    with assert_num_queries_per_db({"employee": 1}):
        assert pks(Employee.objects.exclude(user=alice)) == pks([bob_employee, other_employee])


def test_q_objects(staff):
    alice, bob, alice_employee, bob_employee, _ = staff
    with assert_num_queries_per_db({"employee": 1}):
        found = Employee.objects.filter(Q(user=alice) | Q(user=bob.pk))
        assert pks(found) == pks([alice_employee, bob_employee])
    with assert_num_queries_per_db({"employee": 1}):
        assert list(Employee.objects.filter(~Q(user=alice), user=bob)) == [bob_employee]


def test_get(staff):
    alice, _, alice_employee, _, _ = staff
    with assert_num_queries_per_db({"employee": 1}):
        assert Employee.objects.get(user=alice) == alice_employee


def test_values(staff):
    alice, _, alice_employee, _, _ = staff
    with assert_num_queries_per_db({"employee": 1}):
        rows = list(Employee.objects.filter(pk=alice_employee.pk).values("user", "user_id"))
    assert rows == [{"user": alice.pk, "user_id": alice.pk}]
    with assert_num_queries_per_db({"employee": 1}):
        flat = list(Employee.objects.filter(user=alice).values_list("user", flat=True))
    assert flat == [alice.pk]


def test_update(staff):
    alice, bob, alice_employee, _, _ = staff
    with assert_num_queries_per_db({"employee": 1}):
        assert Employee.objects.filter(pk=alice_employee.pk).update(user_id=bob.pk) == 1
    assert Employee.objects.get(pk=alice_employee.pk).user_id == bob.pk
    with assert_num_queries_per_db({"employee": 1}):
        assert Employee.objects.filter(pk=alice_employee.pk).update(user=alice) == 1
    assert Employee.objects.get(pk=alice_employee.pk).user_id == alice.pk


# By a queryset of the target: evaluated on ITS database ----------------------------------


def test_filter_in_remote_queryset(staff):
    _, _, alice_employee, bob_employee, _ = staff
    remote = User.objects.filter(username__in=["alice", "bob"])
    with assert_num_queries_per_db({"default": 1, "employee": 1}):
        found = pks(Employee.objects.filter(user__in=remote))
    assert found == pks([alice_employee, bob_employee])


def test_filter_in_remote_values_list(staff):
    _, _, alice_employee, _, _ = staff
    remote = User.objects.filter(username="alice").values_list("pk", flat=True)
    with assert_num_queries_per_db({"default": 1, "employee": 1}):
        assert list(Employee.objects.filter(user__in=remote)) == [alice_employee]


def test_filter_exact_remote_queryset_sliced_to_one_row(staff):
    _, _, alice_employee, _, _ = staff
    remote = User.objects.filter(username="alice")[:1]
    with assert_num_queries_per_db({"default": 1, "employee": 1}):
        assert list(Employee.objects.filter(user=remote)) == [alice_employee]


def test_remote_queryset_matching_nothing_skips_the_source_query(staff):
    with assert_num_queries_per_db({"default": 1}):
        assert list(Employee.objects.filter(user__in=User.objects.filter(username="nobody"))) == []


def test_remote_queryset_inside_q_and_exclude(staff):
    _, _, alice_employee, bob_employee, other_employee = staff
    alices = User.objects.filter(username="alice")
    with assert_num_queries_per_db({"default": 1, "employee": 1}):
        assert pks(Employee.objects.exclude(user__in=alices)) == pks([bob_employee, other_employee])
    with assert_num_queries_per_db({"default": 1, "employee": 1}):
        found = Employee.objects.filter(Q(user__in=alices) | Q(name=bob_employee.name))
        assert pks(found) == pks([alice_employee, bob_employee])


def test_remote_queryset_is_not_a_subquery_on_the_source_database():
    """A stray people_autotarget table in ``employee`` must not be read instead of ``default``'s."""
    real = AutoTarget.objects.create(name="alice")
    stray = AutoTarget.objects.using("employee").create(pk=real.pk + 1000, name="alice")
    real_order = OrderFactory(buyer=real)
    stray_order = Order.objects.create(buyer_id=stray.pk)
    with assert_num_queries_per_db({"default": 1, "employee": 1}):
        found = list(Order.objects.filter(buyer__in=AutoTarget.objects.filter(name="alice")))
    assert found == [real_order]
    assert stray_order not in found


def test_remote_queryset_with_explicit_using_is_evaluated_there():
    real = AutoTarget.objects.create(name="real")
    stray = AutoTarget.objects.using("asset").create(pk=real.pk + 1000, name="stray")
    real_order = OrderFactory(buyer=real)
    stray_order = Order.objects.create(buyer_id=stray.pk)
    remote = AutoTarget.objects.using("asset").all()
    with assert_num_queries_per_db({"asset": 1, "employee": 1}):
        assert list(Order.objects.filter(buyer__in=remote)) == [stray_order]
    remote = AutoTarget.objects.using("default").filter(name="real")
    with assert_num_queries_per_db({"default": 1, "employee": 1}):
        assert list(Order.objects.filter(buyer__in=remote)) == [real_order]


def test_remote_queryset_on_the_source_database_stays_a_subquery():
    stray = AutoTarget.objects.using("employee").create(pk=5000, name="here")
    order = Order.objects.create(buyer_id=stray.pk)
    remote = AutoTarget.objects.using("employee").filter(name="here")
    with assert_num_queries_per_db({"employee": 1}):
        assert list(Order.objects.filter(buyer__in=remote)) == [order]


def test_remote_queryset_through_the_model_utils_manager(staff):
    _, _, alice_employee, _, _ = staff
    with assert_num_queries_per_db({"default": 1, "employee": 1}):
        found = list(Employee.active.filter(user__in=User.objects.filter(username="alice")))
    assert found == [alice_employee]


# Lookups that would need a join across databases -----------------------------------------

JOINS = {
    "filter-through-field": lambda: Employee.objects.filter(user__username="alice"),
    "exclude-through-field": lambda: Employee.objects.exclude(user__username="alice"),
    "select_related": lambda: Employee.objects.select_related("user"),
    "order_by-through-field": lambda: Employee.objects.order_by("user__username"),
    "values-through-field": lambda: Employee.objects.values("user__username"),
    "filter-to_field-target-pk": lambda: Order.objects.filter(slug_target__pk=1),
    "reverse-filter": lambda: User.objects.filter(employees__name="x"),
    "reverse-annotate": lambda: User.objects.annotate(n=Count("employees")),
}


@pytest.mark.parametrize("make_queryset", list(JOINS.values()), ids=list(JOINS))
def test_join_across_databases_raises(staff, make_queryset):
    with assert_num_queries_per_db({}), pytest.raises(CrossDatabaseJoinError) as excinfo:
        list(make_queryset())
    message = str(excinfo.value)
    assert isinstance(excinfo.value, FieldError)
    assert "no such table" not in message.lower()
    assert "hr.Employee.user" in message or "hr.Order.slug_target" in message


# Joins from the target back to the source: the hint names the reverse two steps ----------

REVERSE_JOINS = {
    "filter": lambda: User.objects.filter(employees__name="x"),
    "exclude": lambda: User.objects.exclude(employees__name="x"),
    "annotate-count": lambda: User.objects.annotate(n=Count("employees")),
    "aggregate": lambda: User.objects.aggregate(n=Count("employees")),
    "order_by": lambda: User.objects.order_by("employees__name"),
    "values": lambda: User.objects.values("employees__name"),
}


@pytest.mark.parametrize("make_queryset", list(REVERSE_JOINS.values()), ids=list(REVERSE_JOINS))
def test_reverse_join_names_the_reverse_two_steps(staff, make_queryset):
    with assert_num_queries_per_db({}), pytest.raises(CrossDatabaseJoinError) as excinfo:
        result = make_queryset()
        if not isinstance(result, dict):
            list(result)
    message = str(excinfo.value)
    assert message.startswith(
        "auth.User.employees follows hr.Employee.user back into another database"
    )
    assert "User.objects.filter(pk__in=Employee.objects.filter(...).values('user_id'))" in message
    assert "prefetch_related('employees')" in message
    assert "'user__...'" not in message


def test_reverse_one_to_one_join():
    with assert_num_queries_per_db({}), pytest.raises(CrossDatabaseJoinError) as excinfo:
        list(User.objects.filter(badge__title="x"))
    assert str(excinfo.value).startswith("auth.User.badge follows hr.Badge.user back")
    assert "prefetch_related('badge')" in str(excinfo.value)


def test_forward_join_names_the_forward_way(staff):
    with pytest.raises(CrossDatabaseJoinError) as excinfo:
        list(Employee.objects.exclude(user__username="alice"))
    assert str(excinfo.value).startswith("hr.Employee.user points to auth.User")
    assert "prefetch_related('user')" in str(excinfo.value)


def test_the_reverse_two_steps_work(staff):
    """The hint, as written, with the source's queryset a CrossDBQuerySet."""
    from crossdb import CrossDBQuerySet

    alice, _, alice_employee, _, _ = staff
    inner = CrossDBQuerySet(Employee).filter(name=alice_employee.name).values("user_id")
    with assert_num_queries_per_db({"employee": 1, "default": 1}):
        assert list(User.objects.filter(pk__in=inner)) == [alice]
    with assert_num_queries_per_db({"employee": 1, "default": 1}):
        assert alice not in User.objects.exclude(pk__in=inner)
