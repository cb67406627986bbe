"""The reverse manager's writes go to the source's database: add, remove, set, clear."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from tests.helpers import assert_num_queries_per_db
from tests.hr.models import Employee
from tests.inventory.models import Asset

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def employee() -> Employee:
    return Employee.objects.create(user=User.objects.create(username="ada"), name="Ada")


def assets(*names: str) -> list[Asset]:
    return [Asset.objects.create(name=name) for name in names]


@pytest.mark.parametrize("bulk", [True, False])
def test_add(employee, bulk):
    laptop, phone = assets("laptop", "phone")
    with assert_num_queries_per_db({"asset": 1 if bulk else 2}):
        employee.assets.add(laptop, phone, bulk=bulk)
    assert sorted(Asset.objects.filter(owner=employee).values_list("name", flat=True)) == [
        "laptop",
        "phone",
    ]
    assert laptop.owner is employee


def test_add_refuses_an_unsaved_object_in_bulk(employee):
    with pytest.raises(ValueError, match=r"isn't saved\. Use bulk=False"):
        employee.assets.add(Asset(name="unsaved"))


def test_add_refuses_another_model(employee):
    with pytest.raises(TypeError, match="'Asset' instance expected"):
        employee.assets.add(employee)


@pytest.mark.parametrize("bulk", [True, False])
def test_remove_and_clear(employee, bulk):
    laptop, phone, tablet = assets("laptop", "phone", "tablet")
    employee.assets.add(laptop, phone, tablet)

    employee.assets.remove(laptop, bulk=bulk)
    assert sorted(a.name for a in employee.assets.all()) == ["phone", "tablet"]

    employee.assets.clear(bulk=bulk)
    assert not employee.assets.exists()
    assert Asset.objects.filter(owner__isnull=True).count() == 3


def test_set(employee):
    laptop, phone, tablet = assets("laptop", "phone", "tablet")
    employee.assets.add(laptop, phone)

    employee.assets.set([phone, tablet])

    assert sorted(a.name for a in employee.assets.all()) == ["phone", "tablet"]
    laptop.refresh_from_db()
    assert laptop.owner_id is None


def test_get_or_create_and_update_or_create(employee):
    asset, created = employee.assets.get_or_create(name="laptop")
    assert created and asset._state.db == "asset" and asset.owner_id == employee.pk
    same, created = employee.assets.get_or_create(name="laptop")
    assert (same, created) == (asset, False)
    updated, created = employee.assets.update_or_create(name="laptop", defaults={"status": "spare"})
    assert (updated.pk, updated.status, created) == (asset.pk, "spare", False)
