"""
The admin, for models whose relations cross databases.

Django's admin assumes a ForeignKey's target shares the source's database:
the changelist joins every foreign key in ``list_display``, searches through
a relation with an SQL join, and the documentation's ``MultiDBModelAdmin``
passes the source's alias down to every foreign key's choices. For a
``CrossDBForeignKey`` each of those is a "no such table" or, worse, a read
of a same-named table in the wrong database.

``CrossDBModelAdminMixin`` leaves the model's own pages (changelist, change
form, save, delete, history) on the database the routers give the model, as
Django does, and sends every read of a cross-database target to the target's
database:

- ``list_display`` of a cross-database field, and ``list_select_related``
  through one, cost one query per target database per page: a second step,
  never an SQL join (with ``CROSSDB_SELECT_RELATED = "raise"``, crossing
  paths are left out of ``list_select_related``);
- ``search_fields`` and ``list_filter`` through the relation (``user__username``)
  run on the target's database and filter by the keys found (``crossdb.query``);
- choices, raw-id labels and autocomplete read the target's database (autocomplete
  only for a field that an admin of the site declares in ``autocomplete_fields``);
- raw-id and read-only displays show the target, and link to its admin page,
  only to users who may view it.

It registers nothing.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import SEARCH_VAR, ChangeList
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db import router, transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from crossdb import routers
from crossdb.admin_changelist import CrossDBChangeList, _cross_db_field, _cross_db_queryset
from crossdb.admin_widgets import CrossDBForeignKeyRawIdWidget, _AdminForm, _recast
from crossdb.exceptions import TooManyKeys
from crossdb.fields import CrossDBForeignKey

if TYPE_CHECKING:
    _ModelAdminBase = admin.ModelAdmin[Any]
else:
    _ModelAdminBase = object

__all__ = ["CrossDBChangeList", "CrossDBModelAdmin", "CrossDBModelAdminMixin"]


def _declares_autocomplete(
    site: admin.AdminSite, request: HttpRequest, source: type[Model], name: str
) -> bool:
    """Whether ``source``'s admin in ``site``, or an inline of ``source`` there, lists ``name``."""
    registry: dict[type[Model], Any] = site._registry
    source_admin = registry.get(source)
    if source_admin is not None and name in source_admin.get_autocomplete_fields(request):
        return True
    return any(
        inline.model is source and name in inline.autocomplete_fields
        for model_admin in registry.values()
        for inline in model_admin.inlines
    )


class CrossDBModelAdminMixin(_ModelAdminBase):
    """Mix into a ModelAdmin whose model has cross-database relations, or is their target."""

    # Django's admin already keeps the model's own pages (changelist, change form,
    # save, delete, history) on the database the routers give the model; only
    # reads of a cross-database target need sending elsewhere.

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        using = self._autocomplete_db(request)
        return queryset if using is None else queryset.using(using)

    def _autocomplete_db(self, request: HttpRequest) -> str | None:
        """
        Where a cross-database field asking for autocomplete reads this model from.

        It differs from the routers' answer only for a field with ``database=``;
        Django's AutocompleteJsonView asks this, the target's, admin for rows.
        """
        match = request.resolver_match
        if match is None or match.url_name != "autocomplete":
            return None
        try:
            source = apps.get_model(request.GET["app_label"], request.GET["model_name"])
        except (KeyError, LookupError, ValueError):
            return None
        field = _cross_db_field(source, request.GET.get("field_name"))
        if field is None or field.related_model._meta.concrete_model is not self.model:
            return None
        # Django does not ask whether the source's admin offers autocomplete for the
        # field; the query string could name any cross-database field, and so any
        # database a field's database= names. Only a declared field is served.
        if not _declares_autocomplete(self.admin_site, request, source, field.name):
            raise PermissionDenied
        return routers.target_db_for_read(field)

    # The changelist -------------------------------------------------------------

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return CrossDBChangeList

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        try:
            return super().get_changelist_instance(request)
        except TooManyKeys:
            # A short search term can match more rows of the target than one query may
            # hold as keys; the admin's answer to a bad query string is a redirect.
            self.message_user(
                request,
                f"The search “{request.GET.get(SEARCH_VAR, '')}” matches too many rows in "
                f"another database to filter by. Try a more specific search.",
                messages.ERROR,
            )
            raise IncorrectLookupParameters from None

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        return super().get_search_results(request, _cross_db_queryset(queryset), search_term)

    # Related fields ---------------------------------------------------------------

    def has_target_view_permission(self, request: HttpRequest, model: type[Model]) -> bool:
        """Whether the user may see rows of ``model``: its admin's answer, if registered."""
        try:
            target_admin = self.admin_site.get_model_admin(model)
        except NotRegistered:
            opts = model._meta
            return any(
                request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")
                for action in ("view", "change")
            )
        return target_admin.has_view_permission(request)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if isinstance(db_field, CrossDBForeignKey):
            # Whatever alias the caller passed is the source's; widgets and the
            # ordered queryset Django builds from it must read the target's.
            kwargs["using"] = routers.target_db_for_read(db_field)
            if (
                "widget" not in kwargs
                and db_field.name in self.raw_id_fields
                and db_field.name not in self.get_autocomplete_fields(request)
            ):
                kwargs["widget"] = CrossDBForeignKeyRawIdWidget(
                    db_field.remote_field,
                    self.admin_site,
                    using=kwargs["using"],
                    can_view=self.has_target_view_permission(request, db_field.related_model),
                )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # Saving ---------------------------------------------------------------------

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Django saves a change form in one transaction on the model's database. An
        # inline of a model in another database would write there in autocommit, row by
        # row: a row the database refuses would leave the rows before it changed. Each
        # such database gets one transaction around the inlines, and the error that
        # rolls it back propagates and rolls back the model's too.
        own = router.db_for_write(self.model)
        others = {router.db_for_write(formset.model) for formset in formsets} - {own}
        with ExitStack() as stack:
            for alias in sorted(others):
                stack.enter_context(transaction.atomic(using=alias))
            super().save_related(request, form, formsets, change)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> Any:
        adminform = context.get("adminform")
        if isinstance(adminform, helpers.AdminForm):
            hidden = frozenset(
                name
                for name in adminform.readonly_fields
                if (field := _cross_db_field(self.model, name)) is not None
                and not self.has_target_view_permission(request, field.related_model)
            )
            if hidden:
                context["adminform"] = _recast(_AdminForm, adminform, hidden)
        return super().render_change_form(request, context, add, change, form_url, obj)


class CrossDBModelAdmin(CrossDBModelAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """A ModelAdmin for models with cross-database relations."""
