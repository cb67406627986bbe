from django.db import models
from model_utils import Choices
from model_utils.fields import StatusField
from model_utils.models import TimeStampedModel

from crossdb import CrossDBForeignKey


class Asset(TimeStampedModel):
    """Lives in the "asset" database; both employees live in "employee"."""

    STATUS = Choices("in_stock", "assigned", "retired")

    name = models.CharField(max_length=100)
    serial = models.CharField(max_length=50, unique=True)
    status = StatusField()
    assigned_to = CrossDBForeignKey(
        "employee_app.Employee",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assets",
    )
    managed_by = CrossDBForeignKey(
        "employee_app.Employee", on_delete=models.PROTECT, related_name="managed_assets"
    )

    def __str__(self) -> str:
        return f"{self.name} {self.serial}"
