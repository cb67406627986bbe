"""
``CrossDBForeignKey`` and ``CrossDBOneToOneField``.

Both are Django ``ForeignKey``s in everything that stays inside the source's
database: a concrete ``<name>_id`` column of the target key's type, an index,
migrations, forms, serialization, ``related_name``. They differ where a
ForeignKey would assume both tables share a database: no constraint is ever
created, reads go to the target's database (``crossdb.routers``), joins are
refused with an error that names the way out, and ``on_delete`` is emulated
by ``crossdb.deletion`` instead of being handed to the database.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

from django.apps import apps as django_apps
from django.core import checks, exceptions
from django.db import connections, models, router
from django.db.models import deletion
from django.db.models.fields import BLANK_CHOICE_DASH, Field
from django.db.models.fields.related import ForeignKey, OneToOneField
from django.forms import ModelChoiceField

from crossdb import routers
from crossdb.capture_sql import capture_field_checks
from crossdb.deletion import PROPAGATED_POLICIES, CrossDBOnDelete, policy_name
from crossdb.descriptors import (
    CrossDBForwardDescriptor,
    CrossDBForwardOneToOneDescriptor,
    CrossDBReverseManyToOneDescriptor,
    CrossDBReverseOneToOneDescriptor,
)
from crossdb.exceptions import TargetDatabaseError
from crossdb.joins import refuse_join
from crossdb.lookups import CrossDBExact, CrossDBIn

if TYPE_CHECKING:
    # django-stubs' parameters of ForeignKey: the type assigned, and the type read
    # (the target model); its mypy plugin fills them in for each field.
    from typing_extensions import TypeVar

    _ST = TypeVar("_ST", contravariant=True, default=Any)
    _GT = TypeVar("_GT", covariant=True, default=_ST)
else:
    _ST = _GT = Any  # ForeignKey[...] is ForeignKey at runtime (its __class_getitem__)

# Django 6.1's database-level variants (DB_CASCADE, ...) ask one database to
# act on another's rows, which no database can do.
_DatabaseOnDelete: Any = getattr(deletion, "DatabaseOnDelete", ())


class CrossDBForeignKey(ForeignKey[_ST, _GT]):
    """A many-to-one relation to a model that lives in another database."""

    forward_related_accessor_class = CrossDBForwardDescriptor
    related_accessor_class = CrossDBReverseManyToOneDescriptor
    description = "Foreign key to a model in another database (type determined by related field)"
    # Changing it alters no column: the triggers are migration operations of their own.
    non_db_attrs: tuple[str, ...] = (*Field.non_db_attrs, "capture_deletes")

    def __init__(
        self,
        to: Any,
        on_delete: Any,
        *,
        database: str | None = None,
        to_field: str | None = None,
        related_name: str | None = None,
        related_query_name: str | None = None,
        limit_choices_to: Any = None,
        capture_deletes: bool = False,
        **kwargs: Any,
    ) -> None:
        if kwargs.pop("db_constraint", False):
            raise TypeError(
                f"{type(self).__name__} never creates a database constraint: its target "
                f"lives in another database. Remove db_constraint=True."
            )
        if kwargs.get("parent_link"):
            raise TypeError(f"{type(self).__name__} cannot be a parent link.")
        if database is not None and not isinstance(database, str):
            raise TypeError(f"database must be a database alias (a str), not {database!r}.")
        # The user's policy; remote_field.on_delete holds its emulation, which
        # is what Django's deletion Collector calls.
        self.on_delete = on_delete
        self.database = database
        # A trigger on the target's table records every deletion (crossdb.capture).
        self.capture_deletes = capture_deletes
        super().__init__(
            to,
            CrossDBOnDelete(on_delete),
            related_name=related_name,
            related_query_name=related_query_name,
            limit_choices_to=limit_choices_to,
            to_field=to_field,
            db_constraint=False,
            **kwargs,
        )

    def deconstruct(self) -> Any:
        name, _path, args, kwargs = super().deconstruct()
        kwargs["on_delete"] = self.on_delete
        kwargs.pop("db_constraint", None)
        if self.database is not None:
            kwargs["database"] = self.database
        if self.capture_deletes:
            kwargs["capture_deletes"] = True
        return name, f"crossdb.{type(self).__name__}", args, kwargs

    # Queries -----------------------------------------------------------------

    def get_extra_restriction(self, alias: str, related_alias: str) -> Any:
        # Django calls this only for a JOIN that survived trimming, i.e. one SQL would
        # really have to make across the two databases: its condition raises when
        # compiled, naming the way out for the join's direction (crossdb.joins).
        return refuse_join(self, alias)

    # Validation and forms ----------------------------------------------------

    def validate(self, value: Any, model_instance: Any) -> None:
        models.Field.validate(self, value, model_instance)
        if value is None:
            return
        target = self.remote_field.model
        using = routers.target_db_for_read(self, model_instance)
        key_name = str(self.remote_field.field_name)
        queryset = target._base_manager.using(using).filter(**{key_name: value})
        queryset = queryset.complex_filter(self.get_limit_choices_to())
        if not queryset.exists():
            raise exceptions.ValidationError(
                self.error_messages["invalid"],
                code="invalid",
                params={
                    "model": target._meta.verbose_name,
                    "pk": value,
                    "field": self.remote_field.field_name,
                    "value": value,
                    "database": using,
                },
            )

    def formfield(self, *, using: str | None = None, **kwargs: Any) -> Any:
        # Whatever alias the caller (e.g. the admin) passes is the source's;
        # the choices live in the target's database.
        if isinstance(self.remote_field.model, str):
            raise ValueError(
                f"Cannot create form field for {self.name!r} yet, because its related "
                f"model {self.remote_field.model!r} has not been loaded yet"
            )
        queryset = self.remote_field.model._default_manager.using(routers.target_db_for_read(self))
        return super().formfield(**{"form_class": ModelChoiceField, "queryset": queryset, **kwargs})

    def get_choices(
        self,
        include_blank: bool = True,
        blank_choice: Any = None,
        limit_choices_to: Any = None,
        ordering: Any = (),
    ) -> Any:
        # Field.get_choices() reads the target's default manager without
        # .using(), which ignores database= (list_filter uses it).
        if self.choices is not None:
            return super().get_choices(include_blank, blank_choice, limit_choices_to, ordering)
        if blank_choice is None:
            blank_choice = list(BLANK_CHOICE_DASH)
        queryset = self.remote_field.model._default_manager.using(
            routers.target_db_for_read(self)
        ).complex_filter(limit_choices_to or self.get_limit_choices_to())
        if ordering:
            queryset = queryset.order_by(*ordering)
        key = operator.attrgetter(self.target_field.attname)
        return (blank_choice if include_blank else []) + [(key(x), str(x)) for x in queryset]

    # Checks ------------------------------------------------------------------

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        return [
            *super().check(**kwargs),
            *self._check_crossdb_target(),
            *self._check_crossdb_on_delete(),
            *self._check_crossdb_database(),
            *self._check_crossdb_routing(),
            *self._check_crossdb_index(),
            *capture_field_checks(self),
        ]

    def _error(self, msg: str, hint: str, id: str) -> checks.Error:
        return checks.Error(msg, hint=hint, obj=self, id=id)

    def _check_crossdb_target(self) -> list[checks.CheckMessage]:
        if isinstance(self.remote_field.model, str):
            return [
                self._error(
                    f"Field points to {self.remote_field.model!r}, which is not an "
                    f"installed model.",
                    f"Add the app of {self.remote_field.model!r} to INSTALLED_APPS, or fix "
                    f"the 'app_label.ModelName' reference.",
                    "crossdb.E001",
                )
            ]
        return []

    def _check_crossdb_on_delete(self) -> list[checks.CheckMessage]:
        on_delete = self.on_delete
        if not callable(on_delete):
            return [
                self._error(
                    f"on_delete must be callable, not {on_delete!r}.",
                    "Use one of django.db.models' CASCADE, PROTECT, RESTRICT, SET_NULL, "
                    "SET_DEFAULT, SET(...) or DO_NOTHING.",
                    "crossdb.E004",
                )
            ]
        if isinstance(on_delete, _DatabaseOnDelete):
            name = str(on_delete)
            return [
                self._error(
                    f"on_delete={name} asks the database to act on rows of another "
                    f"database, which no database can do.",
                    f"Use on_delete={name.removeprefix('DB_')}: crossdb emulates it "
                    f"across databases.",
                    "crossdb.E005",
                )
            ]
        if policy_name(on_delete) is None:
            return [
                self._error(
                    f"on_delete={on_delete!r} is not one of Django's policies, so crossdb "
                    f"cannot emulate it across databases.",
                    "Use one of django.db.models' CASCADE, PROTECT, RESTRICT, SET_NULL, "
                    "SET_DEFAULT, SET(...) or DO_NOTHING; to react to deletions in your own "
                    "way, use DO_NOTHING with a pre_delete or post_delete signal receiver.",
                    "crossdb.E010",
                )
            ]
        if on_delete is models.SET_NULL and not self.null:
            return [
                self._error(
                    "Field specifies on_delete=SET_NULL, but cannot be null.",
                    "Set null=True on the field, or change the on_delete rule.",
                    "crossdb.E002",
                )
            ]
        if on_delete is models.SET_DEFAULT and not self.has_default():
            return [
                self._error(
                    "Field specifies on_delete=SET_DEFAULT, but has no default value.",
                    "Set a default value, or change the on_delete rule.",
                    "crossdb.E003",
                )
            ]
        return []

    def _check_crossdb_database(self) -> list[checks.CheckMessage]:
        if self.database is None or self.database in connections.settings:
            return []
        return [
            self._error(
                f"database={self.database!r} is not in DATABASES.",
                f"Add {self.database!r} to DATABASES, or use one of: "
                f"{', '.join(sorted(connections.settings))}.",
                "crossdb.E006",
            )
        ]

    def _check_crossdb_routing(self) -> list[checks.CheckMessage]:
        if isinstance(self.remote_field.model, str) or self._check_crossdb_database():
            return []
        target = self.remote_field.model
        try:
            target_db = routers.target_db_for_read(self)
            source_db = routers.source_db_for_read(self)
        except TargetDatabaseError:
            # A route to an unknown alias: crossdb.E031/E032 name the setting to fix.
            return []
        errors: list[checks.CheckMessage] = []
        if target._meta.can_migrate(target_db) and not router.allow_migrate_model(
            target_db, target
        ):
            errors.append(
                self._error(
                    f"{target._meta.label} is read from database {target_db!r}, but the "
                    f"database routers do not allow migrating it there, so its table "
                    f"will not exist in that database.",
                    f"Route {target._meta.label} to the database that holds it (its "
                    f"router's db_for_read), or pass database='<alias>' to the field.",
                    "crossdb.E007",
                )
            )
        if policy_name(self.on_delete) in PROPAGATED_POLICIES:
            if not django_apps.is_installed("crossdb"):
                errors.append(
                    self._error(
                        f"on_delete={policy_name(self.on_delete)} across databases needs "
                        f"the crossdb app, which is not installed.",
                        "Add 'crossdb' to INSTALLED_APPS and run "
                        f"`manage.py migrate crossdb --database={target_db}`.",
                        "crossdb.E009",
                    )
                )
            elif not router.allow_migrate(target_db, "crossdb", model_name="pendingpropagation"):
                errors.append(
                    self._error(
                        f"on_delete={policy_name(self.on_delete)} records deletions of "
                        f"{target._meta.label} in database {target_db!r}, but the routers do "
                        f"not allow migrating the crossdb app there.",
                        f"Let your router's allow_migrate() return True for app_label "
                        f"'crossdb' on {target_db!r}, then run "
                        f"`manage.py migrate crossdb --database={target_db}`.",
                        "crossdb.E008",
                    )
                )
        if target_db == source_db:
            errors.append(
                checks.Warning(
                    f"{self.model._meta.label} and {target._meta.label} are both in "
                    f"database {target_db!r}.",
                    hint="Use models.ForeignKey: inside one database it gives a real "
                    "constraint, joins and on_delete in SQL.",
                    obj=self,
                    id="crossdb.W001",
                )
            )
        return errors

    def _check_crossdb_index(self) -> list[checks.CheckMessage]:
        if self.db_index or self.unique:  # type: ignore[attr-defined]
            return []
        return [
            checks.Warning(
                "Field has db_index=False: reverse lookups, deletions and verify_links "
                "will scan the whole table.",
                hint="Remove db_index=False, or index the column with Meta.indexes.",
                obj=self,
                id="crossdb.W002",
            )
        ]


CrossDBForeignKey.register_lookup(CrossDBIn)
CrossDBForeignKey.register_lookup(CrossDBExact)


class CrossDBOneToOneField(CrossDBForeignKey[_ST, _GT], OneToOneField[_ST, _GT]):
    """
    A one-to-one relation to a model that lives in another database.

    It is a ``OneToOneField`` (``isinstance`` checks in Django and elsewhere see
    one) whose column, checks and accessors are ``CrossDBForeignKey``'s:
    ``OneToOneField.__init__`` sets ``unique``, ``deconstruct`` drops it again,
    and ``_check_unique``, ``save_form_data`` and ``formfield`` come from it.
    """

    many_to_one = False
    one_to_one = True

    forward_related_accessor_class = CrossDBForwardOneToOneDescriptor  # type: ignore[assignment]
    related_accessor_class = CrossDBReverseOneToOneDescriptor  # type: ignore[assignment]
    description = "One-to-one relation to a model in another database"
