"""Serializers, dumpdata and loaddata keep the key and read targets from their own database."""

import json

import pytest
from django.core import serializers

from crossdb.testing import CaptureQueriesPerDatabase
from tests.factories import BadgeFactory, EmployeeFactory, OrderFactory, UserFactory
from tests.helpers import assert_num_queries_per_db, run_command
from tests.hr.models import Badge, Employee, Order

pytestmark = pytest.mark.django_db(databases="__all__")


def dumpdata(*labels, **options):
    result = run_command("dumpdata", *labels, database="employee", format="json", **options)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def loaddata(tmp_path, rows):
    fixture = tmp_path / "hr.json"
    fixture.write_text(json.dumps(rows))
    result = run_command("loaddata", str(fixture), database="employee", verbosity=0)
    assert result.exit_code == 0, result.stderr


def test_serializer_writes_the_key():
    user = UserFactory()
    employee = EmployeeFactory(user=user)
    with assert_num_queries_per_db({}):
        data = json.loads(serializers.serialize("json", [employee]))
    assert data[0]["fields"]["user"] == user.pk


def test_deserializer_reads_the_key():
    user = UserFactory()
    employee = EmployeeFactory(user=user)
    data = serializers.serialize("json", [employee])
    Employee.objects.all().delete()
    (restored,) = serializers.deserialize("json", data, using="employee")
    restored.save(using="employee")
    assert Employee.objects.get().user_id == user.pk


def test_dumpdata_loaddata_round_trip(tmp_path):
    user = UserFactory()
    employee = EmployeeFactory(user=user)
    badge = BadgeFactory(user=user)
    order = OrderFactory(every_target=True)
    rows = dumpdata("hr")
    assert {row["model"] for row in rows} == {"hr.employee", "hr.badge", "hr.order"}
    Employee.objects.all().delete()
    Badge.objects.all().delete()
    Order.objects.all().delete()

    loaddata(tmp_path, rows)

    restored = Employee.objects.get(pk=employee.pk)
    assert (restored.user_id, restored.name, restored.status) == (user.pk, employee.name, "active")
    with assert_num_queries_per_db({"default": 1}):
        assert restored.user == user
    assert Badge.objects.get(pk=badge.pk).user_id == user.pk
    restored_order = Order.objects.get(pk=order.pk)
    for name in ("buyer_id", "big_id", "uuid_target_id", "code_id", "slug_target_id"):
        assert getattr(restored_order, name) == getattr(order, name)


def test_natural_foreign_keys_round_trip(tmp_path):
    user = UserFactory(username="natural")
    employee = EmployeeFactory(user=user)
    rows = dumpdata("hr.employee", natural_foreign=True)
    assert rows[0]["fields"]["user"] == ["natural"]
    Employee.objects.all().delete()

    loaddata(tmp_path, rows)

    assert Employee.objects.get(pk=employee.pk).user_id == user.pk


# Natural foreign keys in every format: the target is looked up on its own database ------

FILE_FORMATS = ["json", "jsonl", "yaml", "xml"]


@pytest.fixture
def natural_rows():
    """An employee and a badge of one user, dumped with natural keys, then deleted."""
    user = UserFactory(username="natural")
    return user, EmployeeFactory(user=user), BadgeFactory(user=user)


def assert_restored(user, employee, badge):
    assert Employee.objects.get(pk=employee.pk).user_id == user.pk
    assert Badge.objects.get(pk=badge.pk).user_id == user.pk


@pytest.mark.parametrize("format", FILE_FORMATS)
def test_natural_keys_dumpdata_loaddata_every_format(tmp_path, natural_rows, format):
    user, employee, badge = natural_rows
    result = run_command(
        "dumpdata", "hr.employee", "hr.badge", database="employee", format=format,
        natural_foreign=True,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "natural" in result.stdout
    Employee.objects.all().delete()
    Badge.objects.all().delete()
    fixture = tmp_path / f"hr.{format}"
    fixture.write_text(result.stdout)

    with CaptureQueriesPerDatabase() as captured:
        loaded = run_command("loaddata", str(fixture), database="employee", verbosity=0)
    assert loaded.exit_code == 0, loaded.stderr
    # One get_by_natural_key() per row, on default; none on the employee database.
    assert len(captured["default"]) == 2, captured.report()
    assert all("auth_user" in query["sql"] for query in captured["default"])
    assert not any("auth_user" in query["sql"] for query in captured["employee"])
    assert_restored(user, employee, badge)


def test_natural_keys_python_format(natural_rows):
    user, employee, badge = natural_rows
    data = serializers.serialize("python", [employee, badge], use_natural_foreign_keys=True)
    assert list(data[0]["fields"]["user"]) == ["natural"]
    Employee.objects.all().delete()
    Badge.objects.all().delete()
    with assert_num_queries_per_db({"default": 2}):
        restored = list(serializers.deserialize("python", data, using="employee"))
    for row in restored:
        row.save(using="employee")
    assert_restored(user, employee, badge)


@pytest.mark.parametrize("format", ["python", *FILE_FORMATS])
def test_formats_keep_django_s_serializer(format):
    from django.core.serializers import BUILTIN_SERIALIZERS

    from crossdb.serialization import CrossDBDeserializerMixin, CrossDBXMLDeserializerMixin

    django_module = BUILTIN_SERIALIZERS[format]
    assert serializers.get_serializer(format).__module__ == django_module
    mixin = CrossDBXMLDeserializerMixin if format == "xml" else CrossDBDeserializerMixin
    assert issubclass(serializers.get_deserializer(format), mixin)
