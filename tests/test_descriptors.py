"""Forward and reverse accessors: which database each read goes to, and how many reads."""

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.test import override_settings

from crossdb import DanglingReference
from tests.factories import (
    AutoTargetFactory,
    BadgeFactory,
    BigTargetFactory,
    CodeTargetFactory,
    EmployeeFactory,
    OrderFactory,
    SlugTargetFactory,
    UserFactory,
    UUIDTargetFactory,
)
from tests.helpers import assert_num_queries_per_db
from tests.hr.models import Badge, Employee, Order
from tests.inventory.models import Asset

pytestmark = pytest.mark.django_db(databases="__all__")

User = get_user_model()


def fresh(obj):
    """The same row, read again from its database, with nothing cached."""
    return type(obj)._base_manager.using(obj._state.db).get(pk=obj.pk)


class VetoRouter:
    """Refuses every relation, as a project's own router might."""

    def allow_relation(self, obj1, obj2, **hints):
        return False


# Forward access --------------------------------------------------------------------------


def test_lazy_load_reads_the_target_database_once():
    user = UserFactory()
    employee = fresh(EmployeeFactory(user=user))
    with assert_num_queries_per_db({"default": 1}):
        loaded = employee.user
    assert loaded == user
    assert loaded._state.db == "default"
    with assert_num_queries_per_db({}):
        assert employee.user is loaded


def test_id_access_costs_nothing():
    employee = fresh(EmployeeFactory())
    with assert_num_queries_per_db({}):
        assert isinstance(employee.user_id, int)


def test_assigning_the_id_clears_the_cache():
    first, second = UserFactory(), UserFactory()
    employee = fresh(EmployeeFactory(user=first))
    assert employee.user == first
    employee.user_id = second.pk
    with assert_num_queries_per_db({"default": 1}):
        assert employee.user == second


def test_null_key_gives_none_without_a_query():
    order = fresh(OrderFactory(buyer=None))
    with assert_num_queries_per_db({}):
        assert order.buyer is None
        assert order.big is None


def test_dangling_key_raises_a_does_not_exist_subclass():
    employee = fresh(Employee.objects.create(user_id=987654, name="ghost"))
    with assert_num_queries_per_db({"default": 1}), pytest.raises(DanglingReference) as excinfo:
        employee.user  # noqa: B018
    error = excinfo.value
    assert isinstance(error, Employee.user.DanglingReference)
    assert isinstance(error, User.DoesNotExist)
    assert isinstance(error, ObjectDoesNotExist)
    message = str(error)
    for part in ("hr.Employee", "user", "987654", "'default'"):
        assert part in message, f"{part!r} not in {message!r}"


def test_dangling_class_is_per_field():
    assert issubclass(Employee.user.DanglingReference, DanglingReference)
    assert issubclass(Employee.user.DanglingReference, User.DoesNotExist)
    assert issubclass(Order.buyer.DanglingReference, Order.buyer.field.related_model.DoesNotExist)
    assert not issubclass(Order.buyer.DanglingReference, User.DoesNotExist)


def test_dangling_key_is_remembered():
    employee = fresh(Employee.objects.create(user_id=987654, name="ghost"))
    with pytest.raises(Employee.user.DanglingReference):
        employee.user  # noqa: B018
    with assert_num_queries_per_db({}), pytest.raises(Employee.user.DanglingReference):
        employee.user  # noqa: B018


# Assignment ------------------------------------------------------------------------------


def test_constructor_and_create_accept_instances():
    user = UserFactory()
    employee = Employee(user=user, name="built")
    assert employee.user_id == user.pk
    with assert_num_queries_per_db({"employee": 1}):
        created = Employee.objects.create(user=user, name="created")
    with assert_num_queries_per_db({}):
        assert created.user is user
    assert fresh(created).user_id == user.pk
    assert created._state.db == "employee"


def test_assigning_a_saved_instance_sets_the_key():
    user = UserFactory()
    employee = EmployeeFactory()
    employee.user = user
    with assert_num_queries_per_db({}):
        assert employee.user_id == user.pk
        assert employee.user is user
    employee.save()
    assert fresh(employee).user_id == user.pk


@pytest.mark.parametrize(
    "bad_value",
    [
        pytest.param(lambda: AutoTargetFactory(), id="wrong-model"),
        pytest.param(lambda: "7", id="not-an-instance"),
    ],
)
def test_bad_assignment_raises_value_error_and_changes_nothing(bad_value):
    user = UserFactory()
    employee = fresh(EmployeeFactory(user=user))
    assert employee.user == user
    value = bad_value()
    with pytest.raises(ValueError, match=r"Employee\.user"):
        employee.user = value
    with assert_num_queries_per_db({}):
        assert employee.user_id == user.pk
        assert employee.user == user


class TestUnsavedTarget:
    """Django's rule: an unsaved target may be assigned; save() refuses until it is saved."""

    def test_assignment_is_accepted_and_save_refused_until_the_target_is_saved(self):
        user = User(username="later")
        employee = Employee(name="Ada")

        with assert_num_queries_per_db({}):
            employee.user = user
        assert employee.user is user
        assert employee.user_id is None
        with pytest.raises(ValueError, match="unsaved related object 'user'"):
            employee.save()
        assert not Employee.objects.exists()

        user.save()
        employee.save()

        assert fresh(employee).user_id == user.pk
        assert employee.user is user

    def test_neither_object_is_given_the_others_database(self):
        user = User(username="later")
        employee = Employee(name="Ada")

        employee.user = user

        assert (user._state.db, employee._state.db) == (None, None)
        user.save()
        employee.save()
        assert (user._state.db, employee._state.db) == ("default", "employee")

    def test_inline_formset_bound_to_an_unsaved_parent(self):
        from django.forms.models import inlineformset_factory

        Formset = inlineformset_factory(User, Employee, fields=["name"], extra=1)
        user = User(username="new")
        data = {
            "employees-TOTAL_FORMS": "1",
            "employees-INITIAL_FORMS": "0",
            "employees-0-name": "Ada",
        }
        formset = Formset(data, instance=user, prefix="employees")

        assert formset.is_valid(), formset.errors
        user.save()
        formset.instance = user
        [employee] = formset.save()

        assert fresh(employee).user_id == user.pk


def test_allow_relation_is_not_asked():
    user = UserFactory()
    employee = EmployeeFactory()
    with override_settings(DATABASE_ROUTERS=[VetoRouter(), "crossdb.routers.CrossDBRouter"]):
        employee.user = user
        employee.save()
        assert list(user.employees.all()) == [employee]
    assert fresh(employee).user_id == user.pk


# Each kind of target key -----------------------------------------------------------------

KEY_KINDS = [
    ("buyer", AutoTargetFactory, "pk"),
    ("big", BigTargetFactory, "pk"),
    ("uuid_target", UUIDTargetFactory, "pk"),
    ("code", CodeTargetFactory, "pk"),
    ("slug_target", SlugTargetFactory, "slug"),
]


@pytest.mark.parametrize(("name", "factory", "key"), KEY_KINDS, ids=[k[0] for k in KEY_KINDS])
def test_every_kind_of_target_key(name, factory, key):
    target = factory()
    order = fresh(Order.objects.create(**{name: target}))
    attname = Order._meta.get_field(name).attname
    assert getattr(order, attname) == getattr(target, key)
    with assert_num_queries_per_db({"default": 1}):
        assert getattr(order, name) == target
    with assert_num_queries_per_db({"employee": 1}):
        assert list(Order.objects.filter(**{name: target})) == [order]
    with assert_num_queries_per_db({"employee": 1}):
        assert list(Order.objects.filter(**{name: getattr(target, key)})) == [order]


def test_factory_trait_fills_every_kind_of_key():
    order = fresh(OrderFactory(every_target=True))
    with assert_num_queries_per_db({"default": 5}):
        targets = [order.buyer, order.big, order.uuid_target, order.code, order.slug_target]
    assert all(target is not None for target in targets)


def test_one_to_one_forward():
    user = UserFactory()
    badge = fresh(BadgeFactory(user=user))
    with assert_num_queries_per_db({"default": 1}):
        assert badge.user == user


def test_chain_across_three_databases():
    asset = fresh(Asset.objects.create(name="laptop", owner=EmployeeFactory()))
    with assert_num_queries_per_db({"employee": 1}):
        owner = asset.owner
    with assert_num_queries_per_db({"default": 1}):
        user = owner.user
    with assert_num_queries_per_db({"employee": 1}):
        assert user.employees.get() == owner


# Reverse access --------------------------------------------------------------------------


def test_reverse_manager_reads_the_source_database():
    user = UserFactory()
    first, second = EmployeeFactory(user=user), EmployeeFactory(user=user)
    EmployeeFactory()
    with assert_num_queries_per_db({"employee": 1}):
        assert sorted(user.employees.all(), key=lambda e: e.pk) == [first, second]
    with assert_num_queries_per_db({"employee": 1}):
        assert list(user.employees.filter(name=first.name)) == [first]
    with assert_num_queries_per_db({"employee": 1}):
        assert user.employees.count() == 2
    with assert_num_queries_per_db({"employee": 1}):
        assert user.employees.exists()


def test_reverse_manager_creates_on_the_source_database():
    user = UserFactory()
    with assert_num_queries_per_db({"employee": 1}):
        employee = user.employees.create(name="hired")
    assert employee._state.db == "employee"
    assert fresh(employee).user_id == user.pk


def test_reverse_manager_of_a_target_with_no_rows():
    user = UserFactory()
    with assert_num_queries_per_db({"employee": 1}):
        assert not user.employees.exists()


def test_reverse_manager_with_a_custom_related_name_on_other_targets():
    target = AutoTargetFactory()
    order = OrderFactory(buyer=target)
    with assert_num_queries_per_db({"employee": 1}):
        assert list(target.orders.all()) == [order]
    employee = EmployeeFactory()
    asset = Asset.objects.create(name="desk", owner=employee)
    with assert_num_queries_per_db({"asset": 1}):
        assert list(employee.assets.all()) == [asset]


def test_reverse_one_to_one_returns_one_object():
    user = UserFactory()
    badge = BadgeFactory(user=user)
    user = fresh(user)
    with assert_num_queries_per_db({"employee": 1}):
        assert user.badge == badge
    with assert_num_queries_per_db({}):
        assert user.badge.user is user


def test_reverse_one_to_one_missing():
    user = fresh(UserFactory())
    with assert_num_queries_per_db({"employee": 1}), pytest.raises(Badge.DoesNotExist):
        user.badge  # noqa: B018
