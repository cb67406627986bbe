"""
factory-boy support: factories that create each row on its own model's database.

A plain ``DjangoModelFactory`` writes to ``Meta.database`` ("default") whatever
the routers say, so an ``Employee`` routed to "employee" lands in "default"
and its ``User`` sub-factory writes wherever its own factory was told to.
``CrossDBModelFactory`` asks the routers instead, and ``CrossDBSubFactory``
makes sure the target row exists, on its database, before the key is set.

Requires factory-boy; ``import crossdb`` never imports this module.
"""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Model
from factory import enums
from factory.builder import BuildStep, StepBuilder
from factory.declarations import SubFactory
from factory.django import DjangoModelFactory

from crossdb.routers import db_for_write

# factory-boy's type hints stop at its public classes: the methods and options a
# factory overrides are untyped, hence the "type: ignore" comments below.

__all__ = ["CrossDBModelFactory", "CrossDBSubFactory"]


class CrossDBModelFactory(DjangoModelFactory[Any]):
    """
    A ``DjangoModelFactory`` that saves on ``router.db_for_write(model)``.

    An explicit ``Meta.database`` other than "default" still wins.
    """

    class Meta:
        abstract = True

    @classmethod
    def _get_manager(cls, model_class: type[Model]) -> Any:
        manager = super()._get_manager(model_class)  # type: ignore[no-untyped-call]
        if cls._meta.database != DEFAULT_DB_ALIAS:  # type: ignore[attr-defined]
            return manager  # already .using(Meta.database)
        return manager.db_manager(db_for_write(model_class))


class CrossDBSubFactory(SubFactory):
    """
    A ``SubFactory`` for the target of a ``CrossDBForeignKey``.

    The target is always *created*, on its model's database, even when the
    source is only built (``EmployeeFactory.build()``), so that the built row
    holds a real key (a plain ``SubFactory`` builds an unsaved target, which
    ``save()`` refuses, as Django does). The target's factory must create on
    that database, i.e. be a ``CrossDBModelFactory`` or name it in ``Meta.database``.
    """

    def evaluate(self, instance: Any, step: BuildStep, extra: dict[str, Any]) -> Any:
        subfactory = self.get_factory()  # type: ignore[no-untyped-call]
        _check_database(subfactory)
        if step.builder.strategy != enums.BUILD_STRATEGY:
            return super().evaluate(instance, step, extra)  # type: ignore[no-untyped-call]
        create: Any = StepBuilder(  # type: ignore[no-untyped-call]
            subfactory._meta, extra, strategy=enums.CREATE_STRATEGY
        )
        force_sequence = step.sequence if self.FORCE_SEQUENCE else None
        return create.build(parent_step=step, force_sequence=force_sequence)


def _check_database(subfactory: type[Any]) -> None:
    if issubclass(subfactory, CrossDBModelFactory) or not issubclass(
        subfactory, DjangoModelFactory
    ):
        return
    options: Any = subfactory._meta
    model = options.get_model_class()
    wanted, used = db_for_write(model), options.database
    if used != wanted:
        raise ValueError(
            f"{subfactory.__name__} creates {model._meta.label} rows on database {used!r}, "
            f"but the routers put them on {wanted!r}. Make {subfactory.__name__} a "
            f"crossdb.factories.CrossDBModelFactory, or set its Meta.database = {wanted!r}."
        )
