from django.contrib.auth import get_user_model
from django.db import models
from model_utils.models import TimeStampedModel


class Employee(TimeStampedModel):
    user_id = models.PositiveIntegerField(unique=True)  # the related user's id
    employee_id = models.CharField(max_length=50, unique=True)
    position = models.CharField(max_length=100)

    def get_user(self):
        return get_user_model().objects.using("default").get(id=self.user_id)
