from django.conf import settings
from django.db import models
from model_utils.models import TimeStampedModel

from crossdb import CrossDBForeignKey


class Employee(TimeStampedModel):
    """Lives in the "employee" database; its user lives in "default"."""

    user = CrossDBForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="employees"
    )
    employee_id = models.CharField(max_length=50, unique=True)
    position = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.employee_id
