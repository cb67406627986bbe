"""The field itself: its column, deconstruction, checks, validation and model-utils neighbours."""

import pytest
from django.conf import SettingsReference
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connections, models, router
from django.test.utils import isolate_apps
from django.utils.module_loading import import_string

from crossdb import CrossDBForeignKey, CrossDBOneToOneField, TargetDatabaseError
from tests.factories import AutoTargetFactory, EmployeeFactory, UserFactory
from tests.helpers import assert_num_queries_per_db
from tests.hr.models import Badge, Employee, Order
from tests.inventory.models import Asset, Label
from tests.people.models import AutoTarget

pytestmark = pytest.mark.django_db(databases="__all__")

# (model, field name, attname, column) of every cross-database field in the test apps.
CROSSDB_FIELDS = [
    (Employee, "user", "user_id", "user_id"),
    (Order, "buyer", "buyer_id", "buyer_id"),
    (Order, "big", "big_id", "big_id"),
    (Order, "uuid_target", "uuid_target_id", "uuid_target_id"),
    (Order, "code", "code_id", "code_ref"),
    (Order, "slug_target", "slug_target_id", "slug_target_id"),
    (Badge, "user", "user_id", "user_id"),
    (Asset, "owner", "owner_id", "owner_id"),
    (Label, "target", "target_id", "target_id"),
]
FIELD_IDS = [f"{model.__name__}.{name}" for model, name, _, _ in CROSSDB_FIELDS]


def field_of(model, name):
    return model._meta.get_field(name)


@pytest.mark.parametrize(("model", "name", "attname", "column"), CROSSDB_FIELDS, ids=FIELD_IDS)
def test_attname_and_column(model, name, attname, column):
    field = field_of(model, name)
    assert isinstance(field, CrossDBForeignKey)
    assert (field.attname, field.column) == (attname, column)
    assert field.get_attname_column() == (attname, column)
    assert field.db_constraint is False


def test_one_to_one_is_unique_and_a_crossdb_field():
    field = field_of(Badge, "user")
    assert isinstance(field, CrossDBOneToOneField)
    assert field.unique and field.one_to_one and not field.many_to_one


@pytest.mark.parametrize(
    ("model", "name", "target", "target_field"),
    [
        (Employee, "user", get_user_model(), "id"),
        (Order, "buyer", AutoTarget, "id"),
        (Order, "slug_target", "people.SlugTarget", "slug"),
        (Order, "code", "people.CodeTarget", "code"),
        (Asset, "owner", Employee, "id"),
    ],
)
def test_target_model_and_field(model, name, target, target_field):
    field = field_of(model, name)
    assert field.related_model._meta.label == (
        target if isinstance(target, str) else target._meta.label
    )
    assert field.target_field.name == target_field


def test_rel_db_type_follows_the_target_key_on_the_source_database():
    for model, name, _, _ in CROSSDB_FIELDS:
        field = field_of(model, name)
        connection = connections[router.db_for_write(model)]
        assert field.db_type(connection) == field.target_field.rel_db_type(connection)


# Deconstruction --------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "name", "attname", "column"), CROSSDB_FIELDS, ids=FIELD_IDS)
def test_deconstruct_round_trip(model, name, attname, column):
    field = field_of(model, name)
    field_name, path, args, kwargs = field.deconstruct()
    assert field_name == name
    assert path == f"crossdb.{type(field).__name__}"
    assert "db_constraint" not in kwargs
    assert kwargs["on_delete"] is field.on_delete
    rebuilt = import_string(path)(*args, **kwargs)
    assert rebuilt.deconstruct()[1:] == (path, args, kwargs)


def test_deconstruct_keeps_options():
    kwargs = field_of(Order, "code").deconstruct()[3]
    assert kwargs["db_column"] == "code_ref"
    assert kwargs["null"] is True and kwargs["blank"] is True
    assert field_of(Order, "slug_target").deconstruct()[3]["to_field"] == "slug"
    assert field_of(Label, "target").deconstruct()[3]["database"] == "employee"
    assert "database" not in field_of(Order, "buyer").deconstruct()[3]
    assert "unique" not in field_of(Badge, "user").deconstruct()[3]


@pytest.mark.parametrize(("model", "name"), [(Employee, "user"), (Badge, "user")])
def test_swappable_auth_user_model(model, name):
    field = field_of(model, name)
    assert field.swappable_setting == "AUTH_USER_MODEL"
    to = field.deconstruct()[3]["to"]
    assert isinstance(to, SettingsReference)
    assert to.setting_name == "AUTH_USER_MODEL"


def test_db_constraint_true_is_refused():
    with pytest.raises(TypeError, match="db_constraint"):
        CrossDBForeignKey(AutoTarget, models.CASCADE, db_constraint=True)


# Explicit database= ---------------------------------------------------------------------


def test_explicit_database_overrides_the_router():
    stray = AutoTarget.objects.using("employee").create(pk=424242, name="stray copy")
    label = Label.objects.create(target_id=stray.pk, text="pinned")
    label = Label.objects.get(pk=label.pk)
    with assert_num_queries_per_db({"employee": 1}):
        assert label.target.name == "stray copy"
    assert label.target._state.db == "employee"


@isolate_apps("tests.hr")
def test_unknown_database_is_a_clear_error_on_access():
    class Pinned(models.Model):
        target = CrossDBForeignKey(AutoTarget, models.CASCADE, database="nope")

        class Meta:
            app_label = "hr"

    with assert_num_queries_per_db({}), pytest.raises(TargetDatabaseError) as excinfo:
        Pinned(target_id=1).target  # noqa: B018
    assert "'nope'" in str(excinfo.value)
    assert "Pinned.target" in str(excinfo.value)


# Validation -----------------------------------------------------------------------------


def test_full_clean_reads_the_target_database():
    user = UserFactory()
    employee = Employee(user_id=user.pk, name="valid")
    with assert_num_queries_per_db({"default": 1}):
        employee.full_clean()


def test_full_clean_rejects_a_dangling_key():
    employee = Employee(user_id=987654, name="dangling")
    with pytest.raises(ValidationError) as excinfo:
        employee.full_clean()
    assert "user" in excinfo.value.message_dict


# Beside django-model-utils --------------------------------------------------------------


def test_timestamps_and_status_still_work():
    employee = EmployeeFactory(status=Employee.STATUS.left)
    employee.refresh_from_db()
    assert employee.created is not None and employee.modified is not None
    assert employee.status == "left"


def test_model_utils_managers_filter_by_the_field():
    user = UserFactory()
    active = EmployeeFactory(user=user)
    EmployeeFactory(user=user, status=Employee.STATUS.left)
    EmployeeFactory()
    with assert_num_queries_per_db({"employee": 1}):
        assert list(Employee.active.filter(user=user)) == [active]
    with assert_num_queries_per_db({"employee": 1}):
        assert list(Employee.objects.select_subclasses().filter(user=user, status="active")) == [
            active
        ]


def test_reverse_manager_keeps_the_model_utils_manager_methods():
    user = UserFactory()
    employee = EmployeeFactory(user=user)
    with assert_num_queries_per_db({"employee": 1}):
        assert list(user.employees.select_subclasses()) == [employee]


def test_the_field_next_to_the_status_field_on_another_database():
    asset = Asset.objects.create(name="laptop", owner=EmployeeFactory())
    asset.refresh_from_db()
    assert asset.status == Asset.STATUS.in_use
    assert asset._state.db == "asset"
    assert Asset.objects.filter(owner=asset.owner_id, status="in_use").get() == asset


def test_factories_create_each_row_on_its_database():
    target = AutoTargetFactory()
    employee = EmployeeFactory()
    assert target._state.db == "default"
    assert (employee._state.db, employee.user._state.db) == ("employee", "default")


@pytest.mark.django_db(databases="__all__")
def test_get_choices_reads_the_target_database():
    # list_filter builds its choices with get_choices(); database= must hold there too.
    AutoTarget.objects.using("default").create(pk=1, name="in default")
    AutoTarget.objects.using("employee").create(pk=1, name="in employee")
    field = Label._meta.get_field("target")
    assert field.get_choices(include_blank=False) == [(1, "in employee")]
    assert field.get_choices()[0][0] == ""


def test_one_to_one_field_is_a_django_one_to_one_field():
    from django.db.models import OneToOneField, OneToOneRel

    from tests.hr.models import Badge

    field = Badge._meta.get_field("user")
    assert isinstance(field, OneToOneField)
    assert isinstance(field.remote_field, OneToOneRel)
    assert (field.one_to_one, field.many_to_one, field.unique) == (True, False, True)
    _name, path, _args, kwargs = field.deconstruct()
    assert path == "crossdb.CrossDBOneToOneField"
    assert "unique" not in kwargs


@pytest.mark.django_db(databases="__all__")
def test_read_only_reverse_one_to_one_in_the_admin(rf):
    from django.contrib import admin
    from django.contrib.auth.models import User

    from tests.hr.models import Badge

    user = User.objects.create_superuser("admin", "a@example.com", "pw")
    badge = Badge.objects.create(user=user, title="Founder")

    class UserAdmin(admin.ModelAdmin):
        fields = ["username", "badge"]
        readonly_fields = ["badge"]

    request = rf.get(f"/admin/auth/user/{user.pk}/change/")
    request.user = user
    response = UserAdmin(User, admin.site).change_view(request, str(user.pk))
    response.render()

    assert response.status_code == 200
    assert "Founder" in response.content.decode()
    assert badge.pk
