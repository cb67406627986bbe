"""Models in the ``employee`` database pointing at rows in ``default``."""

from django.conf import settings
from django.db import models
from model_utils import Choices
from model_utils.fields import StatusField
from model_utils.managers import InheritanceManager, QueryManager
from model_utils.models import TimeStampedModel

from crossdb import CrossDBForeignKey, CrossDBOneToOneField


class Employee(TimeStampedModel):
    STATUS = Choices("active", "left")

    user = CrossDBForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="employees"
    )
    name = models.CharField(max_length=100)
    status = StatusField()

    # model-utils managers beside the field: its lookups and reverse manager must work with them.
    objects = InheritanceManager()
    active = QueryManager(status=STATUS.active)

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    buyer = CrossDBForeignKey(
        "people.AutoTarget", models.PROTECT, null=True, blank=True, related_name="orders"
    )
    big = CrossDBForeignKey("people.BigTarget", models.SET_NULL, null=True, blank=True)
    uuid_target = CrossDBForeignKey("people.UUIDTarget", models.DO_NOTHING, null=True, blank=True)
    code = CrossDBForeignKey(
        "people.CodeTarget", models.CASCADE, null=True, blank=True, db_column="code_ref"
    )
    slug_target = CrossDBForeignKey(
        "people.SlugTarget", models.CASCADE, to_field="slug", null=True, blank=True
    )
    note = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return self.note or f"Order {self.pk}"


class Visit(models.Model):
    """A character key from ``employee`` (MariaDB on the real topology) into ``asset`` (SQLite)."""

    site = CrossDBForeignKey(
        "inventory.Site", models.DO_NOTHING, null=True, blank=True, related_name="visits"
    )

    def __str__(self) -> str:
        return f"Visit {self.pk}"


class Badge(models.Model):
    user = CrossDBOneToOneField(settings.AUTH_USER_MODEL, models.CASCADE, related_name="badge")
    title = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.title
