"""
Admin options that go through a cross-database relation, checked at startup.

Django's admin follows ``list_display``, ``list_filter``, ``ordering``, ``search_fields`` and
``list_select_related`` with SQL joins; through a cross-database relation each of them is a
500 on the changelist. ``check_admin_sites`` looks at every admin site
(``django.contrib.admin.sites.all_sites``), as Django's own ``admin.E116`` does for a
``list_filter`` that names no field:

- ``crossdb.E020``: a plain ``ModelAdmin`` uses such a path; ``CrossDBModelAdmin`` would
  handle it.
- ``crossdb.E021``: no admin can, ``CrossDBModelAdmin`` included: ordering by the target's
  columns, and filters or searches that reach another database through a reverse relation
  or after an ordinary relation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core import checks
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model
from django.db.models.constants import LOOKUP_SEP


@dataclass
class Crossing:
    """Where a path from a model first reaches another database."""

    field: Any  # the CrossDBForeignKey
    step: int  # the index of the path's part that crosses
    reverse: bool  # from the target back to the source
    bare: bool  # the path ends at the relation itself (``"user"``)

    @property
    def label(self) -> str:
        return f"{self.field.model._meta.label}.{self.field.name}"


def crossing(model: type[Model], path: str) -> Crossing | None:
    """The first step of ``path`` (a lookup path from ``model``) that crosses databases."""
    from crossdb.fields import CrossDBForeignKey
    from crossdb.query import _needs_remote

    parts = path.split(LOOKUP_SEP)
    opts: Any = model._meta
    for step, part in enumerate(parts):
        try:
            field = opts.get_field(part)
        except FieldDoesNotExist:
            return None
        if isinstance(field, CrossDBForeignKey) and part != field.attname:
            rest = parts[step + 1 :]
            if rest and not _needs_remote(field, rest):
                return None
            return Crossing(field, step, reverse=False, bare=not rest)
        if field.auto_created and isinstance(getattr(field, "field", None), CrossDBForeignKey):
            return Crossing(field.field, step, reverse=True, bare=step == len(parts) - 1)
        if not field.is_relation or part == getattr(field, "attname", None):
            return None
        opts = field.related_model._meta
    return None


def _names(value: Any) -> Iterator[tuple[int, str]]:
    for index, item in enumerate(value or ()):
        if isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
            item = item[0]  # list_filter's (field, FilterClass)
        if isinstance(item, str):
            yield index, item


@dataclass
class Finding:
    where: str  # "list_filter[0]"
    name: str  # the option's value
    found: Crossing
    why: str
    crossdb_admin_can: bool  # whether CrossDBModelAdmin handles it


def _findings(model_admin: Any) -> Iterator[Finding]:
    """The option values of ``model_admin`` that an SQL join across databases would follow."""
    model = model_admin.model
    for option, why in (("list_filter", "filter"), ("search_fields", "search")):
        for index, name in _names(getattr(model_admin, option, ())):
            found = crossing(model, name.lstrip("^=@") if option == "search_fields" else name)
            if found is not None and not (found.bare and not found.reverse):
                # rewrite_q follows a forward relation that the path starts with.
                can = not found.reverse and found.step == 0
                yield Finding(f"{option}[{index}]", name, found, why, can)
    for index, name in _names(getattr(model_admin, "ordering", ())):
        found = crossing(model, name.lstrip("-?"))
        if found is not None and (not found.bare or found.field.related_model._meta.ordering):
            yield Finding(f"ordering[{index}]", name, found, "order", False)
    for index, name in _names(getattr(model_admin, "list_display", ())):
        if (found := crossing(model, name)) is not None:
            yield Finding(f"list_display[{index}]", name, found, "display", True)
    selected = getattr(model_admin, "list_select_related", False)
    if selected is True:
        for field in _not_null_cross_db_fields(model):
            found = Crossing(field, 0, reverse=False, bare=True)
            yield Finding("list_select_related", "True", found, "select_related()", True)
    elif selected:
        for index, name in _names(selected):
            if (found := crossing(model, name)) is not None:
                yield Finding(f"list_select_related[{index}]", name, found, "join", True)


def _not_null_cross_db_fields(model: type[Model]) -> list[Any]:
    from crossdb.fields import CrossDBForeignKey

    return [
        field
        for field in model._meta.concrete_fields
        if isinstance(field, CrossDBForeignKey) and not field.null
    ]


def check_model_admin(model_admin: Any) -> list[checks.CheckMessage]:
    """E020 and E021 for one registered ModelAdmin, and its inlines' ``ordering``."""
    messages = _check_options(model_admin)
    for inline_class in getattr(model_admin, "inlines", ()):
        # An inline's formset orders its queryset with SQL too (the only such option it has).
        messages += _check_options(inline_class(model_admin.model, model_admin.admin_site))
    return messages


def _check_options(model_admin: Any) -> list[checks.CheckMessage]:
    from crossdb.admin import CrossDBModelAdminMixin

    crossdb_admin = isinstance(model_admin, CrossDBModelAdminMixin)
    messages: list[checks.CheckMessage] = []
    for finding in _findings(model_admin):
        if crossdb_admin and finding.crossdb_admin_can:
            continue
        text = (
            f"The value of '{finding.where}' refers to '{finding.name}', which goes through "
            f"{finding.found.label} across databases: the admin would {finding.why} with an "
            f"SQL join between two databases."
        )
        if finding.crossdb_admin_can:
            hint = (
                "Use crossdb.admin.CrossDBModelAdmin, or put CrossDBModelAdminMixin first "
                "in the admin's bases: it prefetches, filters and searches in two steps."
            )
            error_id = "crossdb.E020"
        else:
            hint, error_id = _hint(finding), "crossdb.E021"
        messages.append(checks.Error(text, hint=hint, obj=type(model_admin), id=error_id))
    return messages


def _hint(finding: Finding) -> str:
    field = finding.found.field
    if finding.why == "order":
        return f"Order by the key ('{field.attname}') instead, or sort in Python."
    if finding.found.reverse:
        source = field.model._meta.object_name
        return (
            f"Filter in two steps with a SimpleListFilter whose queryset() uses "
            f"pk__in={source}.objects.filter(...).values('{field.attname}'), with a "
            f"CrossDBManager on {source}."
        )
    return (
        f"Start the path at {field.model._meta.label}, whose CrossDBModelAdmin filters "
        f"through '{field.name}__...', or filter by key with a SimpleListFilter."
    )


@checks.register(checks.Tags.admin)
def check_admin_sites(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if not apps.is_installed("django.contrib.admin"):
        return []
    from django.contrib.admin.sites import all_sites

    messages: list[checks.CheckMessage] = []
    for site in all_sites:
        for model, model_admin in site._registry.items():
            if app_configs is None or model._meta.app_config in app_configs:
                messages.extend(check_model_admin(model_admin))
    return messages
