"""
``select_related()`` across databases (docs/prefetch.rst), over three databases.

``Customer``, ``Profile`` and ``Order`` live in ``employee``; ``Parcel`` in ``asset``;
users in ``default``. ``Order.customer`` is an ordinary ForeignKey inside ``employee``,
so ``Parcel -> order -> customer -> user`` crosses, joins, then crosses again.
"""

from django.conf import settings
from django.db import models

from crossdb import CrossDBForeignKey, CrossDBManager, CrossDBOneToOneField


class Customer(models.Model):
    user = CrossDBForeignKey(settings.AUTH_USER_MODEL, models.DO_NOTHING, related_name="customers")
    name = models.CharField(max_length=50)

    objects = CrossDBManager()

    def __str__(self) -> str:
        return self.name


class Profile(models.Model):
    user = CrossDBOneToOneField(settings.AUTH_USER_MODEL, models.DO_NOTHING, related_name="profile")
    bio = models.CharField(max_length=50, blank=True)

    objects = CrossDBManager()


class Order(models.Model):
    customer = models.ForeignKey(Customer, models.CASCADE, related_name="orders")
    note = models.CharField(max_length=50, blank=True)

    objects = CrossDBManager()

    def __str__(self) -> str:
        return self.note


class Parcel(models.Model):
    order = CrossDBForeignKey(Order, models.DO_NOTHING, related_name="parcels")
    courier = CrossDBForeignKey(
        Customer, models.DO_NOTHING, null=True, blank=True, related_name="deliveries"
    )
    weight = models.IntegerField(default=1)

    objects = CrossDBManager()
