"""
The benchmark's four tables.

- ``Target`` (database ``default``) and ``Source`` (database ``source``),
  related by a ``CrossDBForeignKey``: the relation across databases.
- ``SameTarget`` and ``SameSource`` (both in database ``same``), related by an
  ordinary ``models.ForeignKey``: Django's own relation inside one database,
  the baseline.

Both pairs have the same columns, so each variant reads rows of the same width.
"""

from django.db import models

from crossdb.fields import CrossDBForeignKey
from crossdb.query import CrossDBManager


class Named(models.Model):
    name = models.CharField(max_length=40)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name


class Target(Named):
    id = models.AutoField(primary_key=True)


class Source(Named):
    user = CrossDBForeignKey(Target, models.CASCADE, related_name="sources")

    objects = CrossDBManager()


class SameTarget(Named):
    id = models.AutoField(primary_key=True)


class SameSource(Named):
    user = models.ForeignKey(SameTarget, models.CASCADE, related_name="sources")
