"""crossdb.E020 / E021: admin options that would join tables of two databases."""

from __future__ import annotations

import warnings

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.core import checks

from crossdb.admin import CrossDBModelAdmin
from crossdb.admin_checks import check_admin_sites, check_model_admin
from tests.hr.models import Employee
from tests.integrity.models import MembershipNote

PLAIN_HINT = (
    "Use crossdb.admin.CrossDBModelAdmin, or put CrossDBModelAdminMixin first in the admin's "
    "bases: it prefetches, filters and searches in two steps."
)


def error(admin_class, where, name, label, why, hint, id="crossdb.E020"):
    return checks.Error(
        f"The value of '{where}' refers to '{name}', which goes through {label} across "
        f"databases: the admin would {why} with an SQL join between two databases.",
        hint=hint,
        obj=admin_class,
        id=id,
    )


def messages_for(model, base, **options):
    with warnings.catch_warnings():
        # Django 6.1 deprecates list_select_related = True, which 5.2 and 6.0 still take.
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        admin_class = type("SomeAdmin", (base,), options)
    model_admin = admin_class(model, admin.AdminSite(name="checks"))
    return admin_class, check_model_admin(model_admin)


def test_e020_plain_model_admin():
    admin_class, messages = messages_for(
        Employee,
        admin.ModelAdmin,
        list_display=["name", "user", "user_id", "user__username"],
        list_filter=[
            "status",
            "user",
            "user__is_staff",
            ("user__username", admin.AllValuesFieldListFilter),
        ],
        search_fields=["name", "user__id", "^user__username"],
        list_select_related=["user"],
    )
    label = "hr.Employee.user"
    assert messages == [
        error(admin_class, "list_filter[2]", "user__is_staff", label, "filter", PLAIN_HINT),
        error(admin_class, "list_filter[3]", "user__username", label, "filter", PLAIN_HINT),
        error(admin_class, "search_fields[2]", "^user__username", label, "search", PLAIN_HINT),
        error(admin_class, "list_display[1]", "user", label, "display", PLAIN_HINT),
        error(admin_class, "list_display[3]", "user__username", label, "display", PLAIN_HINT),
        error(admin_class, "list_select_related[0]", "user", label, "join", PLAIN_HINT),
    ]


def test_e020_list_select_related_true_follows_a_not_null_field():
    admin_class, messages = messages_for(Employee, admin.ModelAdmin, list_select_related=True)
    assert messages == [
        error(
            admin_class,
            "list_select_related",
            "True",
            "hr.Employee.user",
            "select_related()",
            PLAIN_HINT,
        )
    ]


def test_crossdb_model_admin_handles_what_e020_names():
    _, messages = messages_for(
        Employee,
        CrossDBModelAdmin,
        list_display=["user", "user__username"],
        list_filter=["user__is_staff"],
        search_fields=["user__username"],
        list_select_related=True,
    )
    assert messages == []


def test_e021_what_no_admin_can_do():
    order_hint = "Order by the key ('user_id') instead, or sort in Python."
    reverse_hint = (
        "Filter in two steps with a SimpleListFilter whose queryset() uses "
        "pk__in=Employee.objects.filter(...).values('user_id'), with a CrossDBManager on "
        "Employee."
    )
    admin_class, messages = messages_for(
        User,
        CrossDBModelAdmin,
        list_filter=["employees__name", "employees"],
        search_fields=["username", "employees__name"],
        ordering=["employees__name"],
    )
    label, e021 = "hr.Employee.user", "crossdb.E021"
    assert messages == [
        error(
            admin_class, "list_filter[0]", "employees__name", label, "filter", reverse_hint, e021
        ),
        error(admin_class, "list_filter[1]", "employees", label, "filter", reverse_hint, e021),
        error(
            admin_class, "search_fields[1]", "employees__name", label, "search", reverse_hint, e021
        ),
        error(admin_class, "ordering[0]", "employees__name", label, "order", order_hint, e021),
    ]
    admin_class, messages = messages_for(Employee, CrossDBModelAdmin, ordering=["-user__username"])
    assert messages == [
        error(admin_class, "ordering[0]", "-user__username", label, "order", order_hint, e021)
    ]


def test_e021_a_path_crossing_after_an_ordinary_relation():
    admin_class, messages = messages_for(
        MembershipNote, CrossDBModelAdmin, list_filter=["membership__account__name"]
    )
    assert messages == [
        error(
            admin_class,
            "list_filter[0]",
            "membership__account__name",
            "integrity.Membership.account",
            "filter",
            "Start the path at integrity.Membership, whose CrossDBModelAdmin filters through "
            "'account__...', or filter by key with a SimpleListFilter.",
            "crossdb.E021",
        )
    ]


def test_every_admin_site_is_checked():
    other = admin.AdminSite(name="another")
    plain = type("PlainEmployeeAdmin", (admin.ModelAdmin,), {"list_filter": ["user__is_staff"]})
    other.register(Employee, plain)
    found = [m for m in check_admin_sites() if m.obj is plain]
    assert [m.id for m in found] == ["crossdb.E020"]
    assert found[0].msg.startswith("The value of 'list_filter[0]' refers to 'user__is_staff'")


@pytest.mark.urls("tests.test_admin")
def test_the_test_suite_s_admins_pass():
    assert [m for m in check_admin_sites() if m.obj.__module__.startswith("tests.")] == []


def test_e021_an_inlines_ordering():
    """The inline's formset would order its rows with a join: the check names the inline."""
    from tests.inventory.models import Asset

    inline = type(
        "AssetInline",
        (admin.TabularInline,),
        {"model": Asset, "fk_name": "owner", "ordering": ["name", "owner__user__username"]},
    )
    _admin_class, messages = messages_for(Employee, CrossDBModelAdmin, inlines=[inline])
    assert messages == [
        error(
            inline,
            "ordering[1]",
            "owner__user__username",
            "inventory.Asset.owner",
            "order",
            "Order by the key ('owner_id') instead, or sort in Python.",
            "crossdb.E021",
        )
    ]
