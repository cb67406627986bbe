"""
The example project's models with ``CrossDBManager``, for the examples of docs/fields.rst and
docs/prefetch.rst that filter through a relation. The example project keeps Django's default
manager, so that the tutorial can show what a plain QuerySet refuses.
"""

from asset_app import models as asset_app
from employee_app import models as employee_app

from crossdb import CrossDBManager


class Employee(employee_app.Employee):
    objects = CrossDBManager()

    class Meta:
        proxy = True


class Asset(asset_app.Asset):
    objects = CrossDBManager()

    class Meta:
        proxy = True
