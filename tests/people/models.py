"""Targets with every kind of key, in the ``default`` database."""

import uuid

from django.db import models


class Target(models.Model):
    name = models.CharField(max_length=50)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name


class AutoTarget(Target):
    """An AutoField primary key (integer)."""


class BigTarget(Target):
    id = models.BigAutoField(primary_key=True)


class UUIDTarget(Target):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)


class CodeTarget(Target):
    code = models.CharField(max_length=12, primary_key=True)


class SlugTarget(Target):
    """Referenced through ``to_field="slug"`` rather than its primary key."""

    slug = models.SlugField(unique=True)
