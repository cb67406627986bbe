"""
factory-boy factories that know their database (``crossdb.factories``).

Each factory saves through ``router.db_for_write`` of its model, so rows land in
the database the router assigns, and a CrossDBSubFactory creates the target in *its*
database before the source row gets the key.
"""

import factory
from django.contrib.auth import get_user_model

from crossdb.factories import CrossDBModelFactory, CrossDBSubFactory
from tests.hr.models import Badge, Employee, Order
from tests.inventory.models import Asset, Label
from tests.people.models import AutoTarget, BigTarget, CodeTarget, SlugTarget, UUIDTarget

# The name the tests used before crossdb.factories existed.
RoutedFactory = CrossDBModelFactory


class UserFactory(CrossDBModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")


class TargetFactory(CrossDBModelFactory):
    class Meta:
        abstract = True

    name = factory.Sequence(lambda n: f"target{n}")


AutoTargetFactory = factory.make_factory(AutoTarget, FACTORY_CLASS=TargetFactory)
BigTargetFactory = factory.make_factory(BigTarget, FACTORY_CLASS=TargetFactory)
UUIDTargetFactory = factory.make_factory(UUIDTarget, FACTORY_CLASS=TargetFactory)
CodeTargetFactory = factory.make_factory(
    CodeTarget, FACTORY_CLASS=TargetFactory, code=factory.Sequence(lambda n: f"C-{n:04d}")
)
SlugTargetFactory = factory.make_factory(
    SlugTarget, FACTORY_CLASS=TargetFactory, slug=factory.Sequence(lambda n: f"slug-{n}")
)


class EmployeeFactory(CrossDBModelFactory):
    class Meta:
        model = Employee

    user = CrossDBSubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"employee{n}")
    status = Employee.STATUS.active


class OrderFactory(CrossDBModelFactory):
    class Meta:
        model = Order

    buyer = CrossDBSubFactory(AutoTargetFactory)
    note = factory.Sequence(lambda n: f"order{n}")

    class Params:
        every_target = factory.Trait(
            big=CrossDBSubFactory(BigTargetFactory),
            uuid_target=CrossDBSubFactory(UUIDTargetFactory),
            code=CrossDBSubFactory(CodeTargetFactory),
            slug_target=CrossDBSubFactory(SlugTargetFactory),
        )


class BadgeFactory(CrossDBModelFactory):
    class Meta:
        model = Badge

    user = CrossDBSubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"badge{n}")


class AssetFactory(CrossDBModelFactory):
    class Meta:
        model = Asset

    name = factory.Sequence(lambda n: f"asset{n}")
    owner = CrossDBSubFactory(EmployeeFactory)
    status = Asset.STATUS.in_use


class LabelFactory(CrossDBModelFactory):
    class Meta:
        model = Label

    text = factory.Sequence(lambda n: f"label{n}")
