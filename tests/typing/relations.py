"""
Types django-stubs gives cross-database relations: checked by mypy in ``dev.py lint``
(pyproject's [tool.mypy] ``files``), never imported by the tests. A failing ``assert_type``
means a change lost them.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import Manager
from typing_extensions import assert_type

from tests.hr.models import Badge, Employee, Order
from tests.inventory.models import Asset
from tests.people.models import AutoTarget


def forward(employee: Employee, badge: Badge, order: Order, asset: Asset) -> None:
    assert_type(employee.user, User)
    assert_type(employee.user_id, int)
    assert_type(badge.user, User)
    # null=True: the target or None.
    assert_type(order.buyer, AutoTarget | None)
    assert_type(asset.owner, Employee | None)


def assign(employee: Employee, user: User) -> None:
    employee.user = user


def reverse(user: User, target: AutoTarget) -> None:
    assert_type(user.employees.all().first(), Employee | None)
    assert_type(user.badge, Badge)
    assert_type(target.orders.get(), Order)
    _: Manager[Employee] = user.employees
