"""
The admin's change form for cross-database fields: the raw-id widget and the
read-only displays that show the target only to users who may view it. Used by
``crossdb.admin.CrossDBModelAdminMixin``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from django.contrib import admin
from django.contrib.admin import helpers, widgets
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString

if TYPE_CHECKING:
    from django.db.models.fields.reverse_related import ManyToOneRel


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
