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

from collections.abc import Iterator, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin import helpers, widgets
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import SEARCH_VAR, ChangeList
from django.contrib.auth import get_permission_codename
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db.models import Aggregate, Model, Q, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString

from crossdb import routers
from crossdb.conf import crossdb_settings
from crossdb.exceptions import TooManyKeys
from crossdb.fields import CrossDBForeignKey
from crossdb.query import CrossDBQuerySetMixin, rewrite_q

if TYPE_CHECKING:
    from django.db.models.fields.reverse_related import ManyToOneRel

    _ModelAdminBase = admin.ModelAdmin[Any]
else:
    _ModelAdminBase = object

__all__ = ["CrossDBChangeList", "CrossDBModelAdmin", "CrossDBModelAdminMixin"]

# Django's select_related() without arguments follows non-null foreign keys this deep.
_SELECT_RELATED_DEPTH = 5


def _cross_db_field(model: type[Model], name: Any) -> CrossDBForeignKey | None:
    if not isinstance(name, str):
        return None
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    return field if isinstance(field, CrossDBForeignKey) else None


def _relations(model: type[Model], path: str) -> tuple[list[str], bool]:
    """The forward relations ``path`` follows from ``model``, and whether one crosses databases."""
    names: list[str] = []
    crosses = False
    opts: Any = model._meta
    for part in path.split(LOOKUP_SEP):
        try:
            field = opts.get_field(part)
        except FieldDoesNotExist:
            break
        if not (field.is_relation and field.concrete and not field.many_to_many):
            break
        names.append(part)
        crosses = crosses or isinstance(field, CrossDBForeignKey)
        opts = field.related_model._meta
    return names, crosses


def _crosses_databases(model: type[Model], path: str) -> bool:
    return _relations(model, path)[1]


def _list_display_prefetches(model: type[Model], list_display: Sequence[Any]) -> list[str]:
    lookups: dict[str, None] = {}
    for name in list_display:
        if isinstance(name, str):
            names, crosses = _relations(model, name)
            if crosses:
                lookups[LOOKUP_SEP.join(names)] = None
    return list(lookups)


def _list_display_joins(model: type[Model], list_display: Sequence[Any]) -> list[str]:
    """The foreign keys named in ``list_display`` that an SQL join can follow."""
    names = []
    for name in list_display:
        if not isinstance(name, str):
            continue
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        # get_field() also answers to "user_id", which needs no join.
        if (
            field.is_relation
            and field.concrete
            and not field.many_to_many
            and name != getattr(field, "attname", None)
            and not isinstance(field, CrossDBForeignKey)
        ):
            names.append(name)
    return names


def _joinable_paths(model: type[Model], prefix: str = "", depth: int = 1) -> list[str]:
    """What ``select_related()`` without arguments would follow, minus cross-database fields."""
    paths: list[str] = []
    for field in model._meta.concrete_fields:
        remote = field.remote_field
        if remote is None or field.null or remote.parent_link:
            continue
        if isinstance(field, CrossDBForeignKey):
            continue
        path = f"{prefix}{field.name}"
        deeper: list[str] = []
        if depth < _SELECT_RELATED_DEPTH:
            deeper = _joinable_paths(remote.model, f"{path}{LOOKUP_SEP}", depth + 1)
        paths.extend(deeper or [path])
    return paths


def _orderable(model: type[Model], order_field: str) -> str | None:
    """
    ``order_field`` with a cross-database relation replaced by its key column;
    None when ordering would need the target's columns, i.e. an SQL join.
    """
    sign = "-" if order_field.startswith("-") else ""
    parts = order_field.removeprefix("-").split(LOOKUP_SEP)
    opts: Any = model._meta
    for index, part in enumerate(parts):
        try:
            field = opts.get_field(part)
        except FieldDoesNotExist:
            return order_field
        if isinstance(field, CrossDBForeignKey):
            rest = parts[index + 1 :]
            key = field.target_field
            key_names = {key.name, key.attname, *(("pk",) if key.primary_key else ())}
            if rest and (len(rest) > 1 or rest[0] not in key_names):
                return None
            # Ordering by the relation itself would join the target when it has Meta.ordering.
            return sign + LOOKUP_SEP.join([*parts[:index], field.attname])
        if not field.is_relation:
            return order_field
        opts = field.related_model._meta
    return order_field


class _ChangeListQuerySetMixin(CrossDBQuerySetMixin):
    """Also rewrites the ``filter=`` of aggregates: the list filters' facet counts."""

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        kwargs = {name: _rewrite_filter(self.model, value) for name, value in kwargs.items()}
        return super().aggregate(*args, **kwargs)


def _rewrite_filter(model: type[Model], aggregate: Any) -> Any:
    if not isinstance(aggregate, Aggregate):
        return aggregate
    # Django 6.0+ wraps the condition in an AggregateFilter; 5.2 keeps the Q itself.
    wrapper = aggregate.filter
    condition = getattr(wrapper, "condition", wrapper)
    if not isinstance(condition, Q):
        return aggregate
    rewritten = aggregate.copy()
    rewritten_q = rewrite_q(model, condition)
    rewritten.filter = rewritten_q if wrapper is condition else type(wrapper)(rewritten_q)
    return rewritten


@cache
def _with_cross_db_filters(queryset_class: type[QuerySet[Any]]) -> type[QuerySet[Any]]:
    return type(
        f"CrossDB{queryset_class.__name__}",
        (_ChangeListQuerySetMixin, queryset_class),
        {"__module__": __name__},
    )


def _cross_db_queryset(queryset: QuerySet[Any]) -> QuerySet[Any]:
    """``queryset``, able to filter through cross-database relations whatever its class."""
    if isinstance(queryset, _ChangeListQuerySetMixin):
        return queryset
    # Python refuses __class__ assignment between these classes; copy the state instead.
    cls = _with_cross_db_filters(type(queryset))
    rewriting = cls.__new__(cls)
    vars(rewriting).update(vars(queryset._chain()))  # type: ignore[attr-defined]
    return rewriting


class CrossDBChangeList(ChangeList):
    """
    A changelist that prefetches cross-database fields instead of joining them, and
    filters through them (``list_filter = ["user__is_staff"]``) in two steps.
    """

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> Any:
        # The list filters' lookups go through rewrite_q, as the search's do.
        self.root_queryset = _cross_db_queryset(self.root_queryset)
        return super().get_queryset(request, exclude_parameters)

    def apply_select_related(self, qs: QuerySet[Any]) -> QuerySet[Any]:
        # Django joins every foreign key in list_display (5.2: every non-null one
        # in the model once list_display has any), cross-database ones included:
        # our queryset loads those in a second step (crossdb.select_related). The
        # "raise" branch follows Django 5.2's ChangeList.apply_select_related
        # (django/contrib/admin/views/main.py) case by case, leaving out the paths
        # that cross; tests/test_django_copies.py notices when it changes.
        if crossdb_settings.SELECT_RELATED != "raise":
            return super().apply_select_related(_cross_db_queryset(qs))
        if self.list_select_related is True:
            paths = _joinable_paths(self.model)
        elif self.list_select_related is False:
            paths = _list_display_joins(self.model, self.list_display)
        else:
            paths = [
                path
                for path in self.list_select_related
                if not _crosses_databases(self.model, path)
            ]
        return qs.select_related(*paths) if paths else qs

    def get_ordering_field(self, field_name: Any) -> Any:
        order_field = super().get_ordering_field(field_name)
        if isinstance(order_field, str):
            return _orderable(self.model, order_field)
        return order_field

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # The page is still an unevaluated queryset: one query per target database fills it.
        if lookups := _list_display_prefetches(self.model, self.list_display):
            self.result_list = self.result_list.prefetch_related(*lookups)


class CrossDBForeignKeyRawIdWidget(widgets.ForeignKeyRawIdWidget):
    """The raw-id input, showing the target only to users who may view it."""

    def __init__(
        self,
        rel: ManyToOneRel,
        admin_site: admin.AdminSite,
        attrs: dict[str, Any] | None = None,
        using: str | None = None,
        *,
        can_view: bool = True,
    ) -> None:
        super().__init__(rel, admin_site, attrs, using)
        self.can_view = can_view

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        if not self.can_view:
            # The lookup link opens the target's changelist: a dead end without the permission.
            context["related_url"] = None
        return context

    def label_and_url_for_value(self, value: Any) -> tuple[str, str]:
        if not self.can_view:
            return "", ""
        return super().label_and_url_for_value(value)


_T = TypeVar("_T")


def _recast(cls: type[_T], shown: Any, hidden: frozenset[str]) -> _T:
    """``shown``, one of Django's change form helpers, as its subclass ``cls``."""
    recast = cls.__new__(cls)
    vars(recast).update(vars(shown), hidden=hidden)
    return recast


# Django builds the change form's helpers level by level (AdminForm, Fieldset,
# Fieldline, AdminReadonlyField) with no hook for the last one; these redo each
# level's iteration only to swap in _KeyOnlyReadonlyField for hidden fields.


class _KeyOnlyReadonlyField(helpers.AdminReadonlyField):
    """A read-only cross-database field shown as its key: the target stays unread."""

    def contents(self) -> SafeString:
        field = self.form._meta.model._meta.get_field(self.field["field"])
        key = getattr(self.form.instance, field.attname)
        return conditional_escape(self.empty_value_display if key is None else key)


class _Fieldline(helpers.Fieldline):
    hidden: frozenset[str]

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            if isinstance(item, helpers.AdminReadonlyField) and item.field["field"] in self.hidden:
                yield _recast(_KeyOnlyReadonlyField, item, self.hidden)
            else:
                yield item


class _Fieldset(helpers.Fieldset):
    hidden: frozenset[str]

    def __iter__(self) -> Iterator[_Fieldline]:
        for line in super().__iter__():
            yield _recast(_Fieldline, line, self.hidden)


class _AdminForm(helpers.AdminForm):
    """The change form's AdminForm, with read-only fields in ``hidden`` shown as keys."""

    hidden: frozenset[str]

    def __iter__(self) -> Iterator[_Fieldset]:
        for fieldset in super().__iter__():
            yield _recast(_Fieldset, fieldset, self.hidden)


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
