"""
Forms and Django REST framework over cross-database relations.

The choices, and every check that a key exists, read the target's database: for
``Employee.user`` that is ``default``; for ``Label.target`` (``database="employee"``) it is the
stray copy of ``people_autotarget`` in ``employee``, where a read of ``default`` would find
other rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django import forms
from django.contrib.auth.models import User
from django.db import models
from django.test.utils import isolate_apps
from rest_framework import serializers

from crossdb import CrossDBForeignKey
from crossdb.contrib.rest_framework import CrossDBModelSerializer, CrossDBSlugRelatedField
from tests.factories import EmployeeFactory, OrderFactory, SlugTargetFactory, UserFactory
from tests.helpers import assert_num_queries_per_db
from tests.hr.models import Employee, Order
from tests.inventory.models import Label
from tests.people.models import AutoTarget

pytestmark = pytest.mark.django_db(databases="__all__")

MISSING = 987654


class EmployeeForm(forms.ModelForm):
    class Meta:
        model = Employee
        fields = ["name", "user", "status"]


class LabelForm(forms.ModelForm):
    class Meta:
        model = Label
        fields = ["text", "target"]


class EmployeeSerializer(CrossDBModelSerializer):
    class Meta:
        model = Employee
        fields = ["id", "name", "user", "status"]


class LabelSerializer(CrossDBModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "text", "target"]


class OrderSerializer(CrossDBModelSerializer):
    class Meta:
        model = Order
        fields = ["id", "note", "slug_target"]


@pytest.fixture
def in_default_only() -> AutoTarget:
    """A target that exists in ``default`` but not in the stray table ``Label`` reads."""
    target = AutoTarget.objects.create(name="default-only")
    AutoTarget.objects.using("employee").create(pk=target.pk + 1000, name="padding")
    return target


@pytest.fixture
def staff_only():
    """A model whose ``user`` may only be a staff member (``limit_choices_to``)."""
    with isolate_apps("tests.hr"):

        class Assignment(models.Model):
            user = CrossDBForeignKey(User, models.CASCADE, limit_choices_to={"is_staff": True})

            class Meta:
                app_label = "hr"

        yield Assignment


class TestForms:
    def test_choices_come_from_the_users_database(self):
        users = UserFactory.create_batch(2)
        field = Employee._meta.get_field("user").formfield()

        with assert_num_queries_per_db({"default": 1}):
            choices = [label for _value, label in field.choices][1:]

        assert isinstance(field, forms.ModelChoiceField)
        assert field.queryset.db == "default"
        assert choices == [user.username for user in users]

    def test_choices_come_from_the_database_the_field_names(self, in_default_only):
        field = Label._meta.get_field("target").formfield()

        assert field.queryset.db == "employee"
        assert [label for _value, label in field.choices][1:] == ["padding"]

    def test_model_form_accepts_an_existing_user(self):
        user = UserFactory()
        form = EmployeeForm(data={"name": "n", "user": user.pk, "status": "active"})

        # The choice field loads the user; the model's own validation checks it exists.
        with assert_num_queries_per_db({"default": 2}):
            assert form.is_valid(), form.errors

        employee = form.save()
        assert Employee.objects.using("employee").get(pk=employee.pk).user_id == user.pk

    def test_model_form_refuses_a_missing_user(self):
        form = EmployeeForm(data={"name": "n", "user": MISSING, "status": "active"})

        assert not form.is_valid()
        assert form.errors["user"] == [
            "Select a valid choice. That choice is not one of the available choices."
        ]

    def test_model_form_checks_the_database_the_field_names(self, in_default_only):
        form = LabelForm(data={"text": "t", "target": in_default_only.pk})

        assert not form.is_valid()
        assert list(form.errors) == ["target"]

    def test_limit_choices_to_narrows_the_choices_and_validation(self, staff_only):
        staff = UserFactory(is_staff=True)
        other = UserFactory(is_staff=False)
        form_class = forms.modelform_factory(staff_only, fields=["user"])

        choices = [value for value, _label in form_class().fields["user"].choices][1:]
        refused = form_class(data={"user": other.pk})

        assert [choice.value for choice in choices] == [staff.pk]
        assert form_class(data={"user": staff.pk}).is_valid()
        assert not refused.is_valid()
        assert list(refused.errors) == ["user"]


class TestRestFramework:
    def test_serializing_reads_no_user(self):
        employees = EmployeeFactory.create_batch(3)

        with assert_num_queries_per_db({"employee": 1}):
            data = EmployeeSerializer(Employee.objects.order_by("pk"), many=True).data

        assert [row["user"] for row in data] == [e.user_id for e in employees]

    def test_a_valid_key_is_read_from_the_users_database(self):
        user = UserFactory()
        serializer = EmployeeSerializer(data={"name": "n", "user": user.pk, "status": "active"})

        with assert_num_queries_per_db({"default": 1}):
            assert serializer.is_valid(), serializer.errors

        assert serializer.validated_data["user"] == user
        employee = serializer.save()
        assert Employee.objects.using("employee").get(pk=employee.pk).user_id == user.pk

    def test_a_missing_key_gets_drfs_error(self):
        serializer = EmployeeSerializer(data={"name": "n", "user": MISSING, "status": "active"})

        assert not serializer.is_valid()
        assert serializer.errors["user"] == [f'Invalid pk "{MISSING}" - object does not exist.']
        assert serializer.errors["user"][0].code == "does_not_exist"

    def test_keys_are_checked_in_the_database_the_field_names(self, in_default_only):
        padding = AutoTarget.objects.using("employee").get(name="padding")

        refused = LabelSerializer(data={"text": "t", "target": in_default_only.pk})
        accepted = LabelSerializer(data={"text": "t", "target": padding.pk})

        assert not refused.is_valid()
        assert list(refused.errors) == ["target"]
        assert accepted.is_valid(), accepted.errors
        assert accepted.validated_data["target"]._state.db == "employee"

    def test_a_to_field_relation_is_shown_by_its_key(self):
        target = SlugTargetFactory(slug="blue")
        order = Order.objects.create(note="o", slug_target=target)

        assert isinstance(OrderSerializer().fields["slug_target"], CrossDBSlugRelatedField)
        with assert_num_queries_per_db({"employee": 1}):
            data = OrderSerializer(Order.objects.get(pk=order.pk)).data

        assert data["slug_target"] == "blue"

    def test_a_to_field_relation_validates_the_slug(self):
        target = SlugTargetFactory(slug="blue")

        accepted = OrderSerializer(data={"note": "o", "slug_target": "blue"})
        refused = OrderSerializer(data={"note": "o", "slug_target": "nope"})

        assert accepted.is_valid(), accepted.errors
        assert accepted.validated_data["slug_target"] == target
        assert not refused.is_valid()
        assert refused.errors["slug_target"] == ["Object with slug=nope does not exist."]

    def test_pk_field_is_honoured(self):
        employee = EmployeeFactory()

        class Serializer(CrossDBModelSerializer):
            class Meta:
                model = Employee
                fields = ["user"]
                extra_kwargs = {"user": {"pk_field": serializers.CharField()}}

        assert Serializer(employee).data["user"] == str(employee.user_id)
        assert Serializer(data={"user": str(employee.user_id)}).is_valid()

    def test_nested_targets_load_in_one_query_with_prefetch_related(self):
        orders = OrderFactory.create_batch(3)

        class Serializer(CrossDBModelSerializer):
            class Meta:
                model = Order
                fields = ["note", "buyer"]
                depth = 1

        with assert_num_queries_per_db({"employee": 1, "default": 1}):
            queryset = Order.objects.order_by("pk").prefetch_related("buyer")
            data = Serializer(queryset, many=True).data

        assert [row["buyer"]["name"] for row in data] == [o.buyer.name for o in orders]

    def test_limit_choices_to_is_honoured(self, staff_only):
        serializer_class = type(
            "AssignmentSerializer",
            (CrossDBModelSerializer,),
            {"Meta": type("Meta", (), {"model": staff_only, "fields": ["user"]})},
        )
        staff = UserFactory(is_staff=True)
        other = UserFactory(is_staff=False)

        assert serializer_class(data={"user": staff.pk}).is_valid()
        assert not serializer_class(data={"user": other.pk}).is_valid()

    def test_a_plain_model_serializer_reads_the_routers_database(self, in_default_only):
        # What the mixin fixes: DRF validates against the target's default manager.
        plain = type(
            "PlainLabelSerializer",
            (serializers.ModelSerializer,),
            {"Meta": LabelSerializer.Meta},
        )

        assert plain(data={"text": "t", "target": in_default_only.pk}).is_valid()


def test_importing_crossdb_never_imports_rest_framework():
    repo = Path(__file__).resolve().parent.parent
    code = (
        "import sys, django; django.setup(); "
        "import crossdb, crossdb.fields, crossdb.admin, crossdb.contrib; "
        "assert 'rest_framework' not in sys.modules, 'rest_framework was imported'"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": os.pathsep.join([str(repo), str(repo / "src")]),
    }

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
