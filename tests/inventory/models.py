"""Models in the ``asset`` database pointing at rows in ``employee``."""

from django.db import models
from model_utils import Choices
from model_utils.fields import StatusField

from crossdb import CrossDBForeignKey


class Asset(models.Model):
    STATUS = Choices("in_use", "spare", "retired")

    name = models.CharField(max_length=100)
    owner = CrossDBForeignKey(
        "hr.Employee", models.SET_NULL, null=True, blank=True, related_name="assets"
    )
    status = StatusField()

    def __str__(self) -> str:
        return self.name


class Label(models.Model):
    """
    Reads its target through an explicit ``database=`` instead of the router's answer.

    The router puts ``people.AutoTarget`` in ``default``; this field reads it from the
    stray copy of its table that the test session creates in ``employee``.
    """

    target = CrossDBForeignKey(
        "people.AutoTarget",
        models.DO_NOTHING,
        database="employee",
        null=True,
        blank=True,
        related_name="labels",
    )
    text = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.text


class Site(models.Model):
    """A character primary key in ``asset``: SQLite on both topologies, probed with json_each()."""

    code = models.CharField(max_length=12, primary_key=True)

    def __str__(self) -> str:
        return self.code
