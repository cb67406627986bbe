"""
The admin over cross-database relations, through the test client.

``Employee`` (database ``employee``) points at ``auth.User`` (``default``); its admin in
``tests/hr/admin.py`` uses ``raw_id_fields`` for ``user``, ``Badge``'s uses autocomplete. A
second admin site in this module covers a field with ``database=`` and two hops across
databases. Every authenticated request costs two queries on ``default`` before the view
runs: the session and the user.
"""

from __future__ import annotations

import json
import re

import pytest
from django.contrib import admin
from django.contrib.admin import AdminSite
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connections
from django.test import RequestFactory
from django.test.utils import override_settings
from django.urls import path

from crossdb.admin import CrossDBChangeList, CrossDBModelAdmin
from tests.factories import AssetFactory, BadgeFactory, EmployeeFactory, UserFactory
from tests.helpers import assert_num_queries_per_db
from tests.hr.models import Badge, Employee, Order
from tests.integrity.models import Account, Membership, MembershipNote
from tests.inventory.models import Asset, Label
from tests.people.models import AutoTarget

pytestmark = [pytest.mark.django_db(databases="__all__"), pytest.mark.urls("tests.test_admin")]

SESSION_AND_USER = 2


class StaffFilter(admin.SimpleListFilter):
    """docs/admin.rst's filter through the relation, by key."""

    title = "staff"
    parameter_name = "staff"

    def lookups(self, request, model_admin):
        return [("1", "Staff")]

    def queryset(self, request, queryset):
        if self.value() == "1":
            return queryset.filter(user__in=User.objects.filter(is_staff=True))
        return queryset


class TargetAdmin(CrossDBModelAdmin):
    ordering = ["name"]
    search_fields = ["name"]


class LabelAdmin(CrossDBModelAdmin):
    autocomplete_fields = ["target"]


class AssetAdmin(CrossDBModelAdmin):
    list_display = ["name", "owner", "owner__user__username"]
    search_fields = ["name", "owner__user__username"]


class MembershipNoteAdmin(CrossDBModelAdmin):
    list_display = ["text", "membership", "membership__account"]


site = AdminSite(name="crossdb_tests")
site.register(AutoTarget, TargetAdmin)
site.register(Label, LabelAdmin)
site.register(Asset, AssetAdmin)
site.register(MembershipNote, MembershipNoteAdmin)

urlpatterns = [path("admin/", admin.site.urls), path("crossdb-admin/", site.urls)]


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    return client


@pytest.fixture
def clerk_client(client):
    """Log in a staff user holding only the permissions given, e.g. ``"hr.view_employee"``."""

    def login(*perms: str):
        clerk = User.objects.create_user("clerk", is_staff=True)
        for perm in perms:
            app_label, codename = perm.split(".")
            clerk.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        client.force_login(clerk)
        return client

    return login


def employee_admin() -> CrossDBModelAdmin:
    return admin.site.get_model_admin(Employee)  # type: ignore[return-value]


def change_url(employee: Employee) -> str:
    return f"/admin/hr/employee/{employee.pk}/change/"


def user_link(user: User) -> str:
    return f'href="/admin/auth/user/{user.pk}/change/"'


def text(response) -> str:
    return response.content.decode()


def cells(response, column: str) -> list[str]:
    """The contents of a changelist column; Django adds classes such as "nowrap" by type."""
    return re.findall(rf'<td class="field-{column}(?: [^"]*)?">(.*?)</td>', text(response))


class TestChangelist:
    @pytest.mark.parametrize("rows", [1, 6])
    def test_list_display_costs_one_query_per_target_database(self, admin_client, rows):
        employees = EmployeeFactory.create_batch(rows)

        # employee: the filtered count, the full count, the page; default: the users.
        with assert_num_queries_per_db({"default": SESSION_AND_USER + 1, "employee": 3}):
            response = admin_client.get("/admin/hr/employee/")

        assert response.status_code == 200
        assert isinstance(response.context["cl"], CrossDBChangeList)
        assert cells(response, "user") == [e.user.username for e in reversed(employees)]

    def test_two_hops_cost_one_query_per_database(self, admin_client):
        assets = AssetFactory.create_batch(3)

        with assert_num_queries_per_db(
            {"default": SESSION_AND_USER + 1, "employee": 1, "asset": 3}
        ):
            response = admin_client.get("/crossdb-admin/inventory/asset/")

        assert response.status_code == 200
        assets.reverse()
        assert cells(response, "owner") == [asset.owner.name for asset in assets]
        assert cells(response, "owner__user__username") == [a.owner.user.username for a in assets]

    @pytest.mark.parametrize("list_select_related", [False, True])
    def test_a_relation_inside_one_database_is_still_joined(
        self, admin_client, monkeypatch, list_select_related
    ):
        monkeypatch.setattr(
            site.get_model_admin(MembershipNote), "list_select_related", list_select_related
        )
        for name in ("acme", "globex"):
            membership = Membership.objects.create(account=Account.objects.create(name=name))
            MembershipNote.objects.create(membership=membership, text=name)

        # employee: the page joins the memberships; default: their accounts.
        with assert_num_queries_per_db({"default": SESSION_AND_USER + 1, "employee": 3}):
            response = admin_client.get("/crossdb-admin/integrity/membershipnote/")

        assert cells(response, "membership__account") == ["globex", "acme"]

    @pytest.mark.parametrize("list_select_related", [["user"], True])
    def test_list_select_related_never_joins_across_databases(
        self, admin_client, monkeypatch, list_select_related
    ):
        monkeypatch.setattr(employee_admin(), "list_select_related", list_select_related)
        employee = EmployeeFactory()

        with assert_num_queries_per_db({"default": SESSION_AND_USER + 1, "employee": 3}):
            response = admin_client.get("/admin/hr/employee/")

        assert employee.user.username in text(response)

    def test_a_missing_user_shows_the_empty_value(self, admin_client):
        Employee.objects.create(name="orphan", user_id=987654)

        response = admin_client.get("/admin/hr/employee/")

        assert response.status_code == 200
        assert cells(response, "user") == ["-"]

    def test_sorting_by_the_relation_sorts_by_its_key(self, admin_client, monkeypatch):
        # With Meta.ordering on the target, Django's order_by("user") would join auth_user.
        monkeypatch.setattr(User._meta, "ordering", ["username"])
        first, second = UserFactory(username="zed"), UserFactory(username="amy")
        EmployeeFactory(user=second, name="second")
        EmployeeFactory(user=first, name="first")

        # Column 2 is "user": the action checkbox is column 0.
        response = admin_client.get("/admin/hr/employee/?o=2")

        assert response.status_code == 200
        assert [e.name for e in response.context["cl"].result_list] == ["first", "second"]

    def test_sorting_by_a_column_of_the_target_is_ignored(self, admin_client, monkeypatch):
        monkeypatch.setattr(employee_admin(), "list_display", ["name", "user__username"])
        employees = EmployeeFactory.create_batch(2)

        with assert_num_queries_per_db({"default": SESSION_AND_USER + 1, "employee": 3}):
            response = admin_client.get("/admin/hr/employee/?o=2")

        assert response.status_code == 200
        assert cells(response, "user__username") == [e.user.username for e in reversed(employees)]


class TestSearch:
    def test_search_through_the_relation_runs_on_the_users_database(self, admin_client):
        alice = EmployeeFactory(user__username="alice", name="one")
        EmployeeFactory(user__username="bob", name="two")

        # default: the matching user ids for the count, again for the page, then the users shown.
        with assert_num_queries_per_db({"default": SESSION_AND_USER + 3, "employee": 3}):
            response = admin_client.get("/admin/hr/employee/?q=ali")

        assert list(response.context["cl"].result_list) == [alice]

    def test_each_term_matches_a_column_or_the_relation(self, admin_client):
        by_name = EmployeeFactory(user__username="bob", name="alpha")
        by_user = EmployeeFactory(user__username="alpine", name="two")
        EmployeeFactory(user__username="carol", name="three")

        response = admin_client.get("/admin/hr/employee/?q=alp")

        assert set(response.context["cl"].result_list) == {by_name, by_user}

    def test_search_across_two_databases(self, admin_client):
        alices = AssetFactory(name="desk", owner__user__username="alice")
        AssetFactory(name="chair", owner__user__username="bob")

        response = admin_client.get("/crossdb-admin/inventory/asset/?q=alice")

        assert list(response.context["cl"].result_list) == [alices]

    def test_a_list_filter_by_key(self, admin_client, monkeypatch):
        monkeypatch.setattr(employee_admin(), "list_filter", [StaffFilter])
        staff = EmployeeFactory(user__is_staff=True)
        EmployeeFactory(user__is_staff=False)

        response = admin_client.get("/admin/hr/employee/?staff=1")

        assert list(response.context["cl"].result_list) == [staff]

    def test_a_list_filter_through_the_relation(self, admin_client, monkeypatch):
        monkeypatch.setattr(employee_admin(), "list_filter", ["user__is_staff"])
        staff = EmployeeFactory(user__is_staff=True)
        EmployeeFactory(user__is_staff=False)

        # default: the users' keys for the filtered count, again for the page, the page's
        # users; employee: the filtered count, the full count, the page.
        with assert_num_queries_per_db({"default": SESSION_AND_USER + 3, "employee": 3}):
            response = admin_client.get("/admin/hr/employee/?user__is_staff__exact=1")

        assert response.status_code == 200
        assert list(response.context["cl"].result_list) == [staff]

    def test_a_list_filter_through_the_relation_with_facets(self, admin_client, monkeypatch):
        monkeypatch.setattr(employee_admin(), "list_filter", ["user__is_staff"])
        EmployeeFactory.create_batch(2, user__is_staff=True)
        EmployeeFactory(user__is_staff=False)

        response = admin_client.get("/admin/hr/employee/?user__is_staff__exact=1&_facets=1")

        assert response.status_code == 200
        assert len(response.context["cl"].result_list) == 2
        assert re.search(r"Yes\s*\(2\)", text(response))
        assert re.search(r"No\s*\(1\)", text(response))

    def test_a_list_filter_of_target_values(self, admin_client, monkeypatch):
        monkeypatch.setattr(employee_admin(), "list_filter", ["user__username"])
        ada = EmployeeFactory(user__username="ada")
        EmployeeFactory(user__username="bob")

        response = admin_client.get("/admin/hr/employee/", {"user__username": "ada"})

        assert response.status_code == 200
        assert list(response.context["cl"].result_list) == [ada]
        assert "?user__username=bob" in text(response)

    @override_settings(CROSSDB_MAX_LOOKUP_KEYS=1)
    def test_too_many_matching_users_ask_for_a_narrower_search(self, admin_client):
        EmployeeFactory(user__username="ann")
        EmployeeFactory(user__username="anna")

        response = admin_client.get("/admin/hr/employee/?q=ann")

        assert response.status_code == 302
        assert response["Location"] == "/admin/hr/employee/?e=1"
        follow = admin_client.get(response["Location"])
        assert "The search “ann” matches too many rows in another database" in text(follow)


class TestChangeForm:
    def test_raw_id_widget_shows_and_links_the_user(self, admin_client):
        employee = EmployeeFactory()

        # default: the content type for the form's links, the user beside the raw-id input.
        with assert_num_queries_per_db({"default": SESSION_AND_USER + 2, "employee": 1}):
            response = admin_client.get(change_url(employee))

        assert response.status_code == 200
        assert f"<strong><a {user_link(employee.user)}>{employee.user.username}</a>" in text(
            response
        )
        assert 'id="lookup_id_user"' in text(response)

    def test_raw_id_widget_hides_the_user_from_who_may_not_view_users(self, clerk_client):
        employee = EmployeeFactory(user__username="secret-name")
        client = clerk_client("hr.view_employee", "hr.change_employee")

        response = client.get(change_url(employee))

        assert response.status_code == 200
        assert f'name="user" value="{employee.user_id}"' in text(response)
        assert "secret-name" not in text(response)
        assert user_link(employee.user) not in text(response)
        assert 'id="lookup_id_user"' not in text(response)

    def test_raw_id_widget_shows_the_user_with_view_permission(self, clerk_client):
        employee = EmployeeFactory(user__username="visible-name")
        client = clerk_client("hr.change_employee", "auth.view_user")

        response = client.get(change_url(employee))

        assert f"<a {user_link(employee.user)}>visible-name</a>" in text(response)

    def test_read_only_display_hides_the_user_from_who_may_not_view_users(self, clerk_client):
        employee = EmployeeFactory(user__username="secret-name")
        client = clerk_client("hr.view_employee")

        # default: the clerk's user and group permissions.
        with assert_num_queries_per_db({"default": SESSION_AND_USER + 2, "employee": 1}):
            response = client.get(change_url(employee))

        assert response.status_code == 200
        assert f'<div class="readonly">{employee.user_id}</div>' in text(response)
        assert "secret-name" not in text(response)
        assert user_link(employee.user) not in text(response)

    def test_read_only_display_links_the_user_with_view_permission(self, clerk_client):
        employee = EmployeeFactory(user__username="visible-name")
        client = clerk_client("hr.view_employee", "auth.view_user")

        response = client.get(change_url(employee))

        assert f'<div class="readonly"><a {user_link(employee.user)}>visible-name</a>' in text(
            response
        )

    @pytest.mark.parametrize(
        ("perms", "shown"),
        [
            ((), False),
            (("hr.view_employee",), True),
            (("hr.change_employee",), True),
        ],
    )
    def test_without_a_target_admin_the_target_models_permissions_decide(
        self, clerk_client, perms, shown
    ):
        # This module's site has no admin for Employee, the target of Asset.owner.
        asset = AssetFactory(owner__name="owner-name")
        client = clerk_client("inventory.view_asset", *perms)

        response = client.get(f"/crossdb-admin/inventory/asset/{asset.pk}/change/")

        assert response.status_code == 200
        assert ("owner-name" in text(response)) is shown
        assert (f'<div class="readonly">{asset.owner_id}</div>' in text(response)) is not shown

    def test_saving_a_new_user_writes_the_employee_database(self, admin_client):
        employee = EmployeeFactory(name="kept")
        other = UserFactory()

        response = admin_client.post(
            change_url(employee), {"name": "kept", "user": other.pk, "status": "active"}
        )

        assert response.status_code == 302
        assert Employee.objects.using("employee").get(pk=employee.pk).user_id == other.pk
        entry = LogEntry.objects.get()
        assert entry.object_id == str(employee.pk)

    def test_a_missing_user_is_refused(self, admin_client):
        employee = EmployeeFactory()

        response = admin_client.post(
            change_url(employee), {"name": "x", "user": 987654, "status": "active"}
        )

        assert response.status_code == 200
        assert response.context["adminform"].form.errors["user"] == [
            "Select a valid choice. That choice is not one of the available choices."
        ]
        assert Employee.objects.get(pk=employee.pk).user_id == employee.user_id

    def test_add_creates_the_employee_in_its_database(self, admin_client):
        user = UserFactory()

        response = admin_client.post(
            "/admin/hr/employee/add/", {"name": "new", "user": user.pk, "status": "active"}
        )

        assert response.status_code == 302
        assert Employee.objects.using("employee").get(name="new").user_id == user.pk

    def test_history_lists_the_change(self, admin_client):
        employee = EmployeeFactory()
        admin_client.post(
            change_url(employee), {"name": "renamed", "user": employee.user_id, "status": "left"}
        )

        # default: the content type, then the log entries with their users.
        with assert_num_queries_per_db({"default": SESSION_AND_USER + 2, "employee": 1}):
            response = admin_client.get(f"/admin/hr/employee/{employee.pk}/history/")

        assert response.status_code == 200
        assert "Changed Name and Status." in text(response)

    def test_delete_view_deletes_from_the_employee_database(self, admin_client):
        employee = EmployeeFactory()

        response = admin_client.post(f"/admin/hr/employee/{employee.pk}/delete/", {"post": "yes"})

        assert response.status_code == 302
        assert not Employee.objects.using("employee").filter(pk=employee.pk).exists()

    def test_delete_action_deletes_from_the_employee_database(self, admin_client):
        doomed, kept = EmployeeFactory.create_batch(2)

        response = admin_client.post(
            "/admin/hr/employee/",
            {"action": "delete_selected", "_selected_action": [doomed.pk], "post": "yes"},
        )

        assert response.status_code == 302
        assert list(Employee.objects.using("employee").all()) == [kept]


class TestChoices:
    def test_select_lists_the_targets_from_their_database_in_admin_order(self, admin_client):
        AutoTarget.objects.create(name="zulu")
        AutoTarget.objects.create(name="alpha")
        # A same-named table in the order's database: reading it would be the classic bug.
        AutoTarget.objects.using("employee").create(name="shadow")

        # default: the content type, then one query per <select> (buyer, big, uuid_target,
        # code); slug_target is a raw-id input with no value.
        with assert_num_queries_per_db({"default": SESSION_AND_USER + 5}):
            response = admin_client.get("/admin/hr/order/add/")

        assert response.status_code == 200
        buyer = response.context["adminform"].form.fields["buyer"]
        assert buyer.queryset.db == "default"
        assert [label for _value, label in buyer.choices][1:] == ["alpha", "zulu"]

    def test_the_source_alias_never_reaches_the_target(self, rf_request):
        # The documentation's MultiDBModelAdmin passes its own alias to every foreign key.
        model_admin = employee_admin()
        formfield = model_admin.formfield_for_foreignkey(
            Employee._meta.get_field("user"), rf_request, using="employee"
        )

        assert formfield.queryset.db == "default"
        assert formfield.widget.db == "default"

    def test_a_field_with_a_database_option_reads_that_database(self, rf_request):
        AutoTarget.objects.create(name="in-default")
        shadow = AutoTarget.objects.using("employee").create(name="in-employee")
        field = Label._meta.get_field("target")

        select = CrossDBModelAdmin(Label, site).formfield_for_foreignkey(field, rf_request)
        raw_id_admin = type("RawId", (CrossDBModelAdmin,), {"raw_id_fields": ["target"]})
        raw_id = raw_id_admin(Label, site).formfield_for_foreignkey(field, rf_request)

        assert [label for _value, label in select.choices][1:] == ["in-employee"]
        assert raw_id.widget.label_and_url_for_value(shadow.pk)[0] == "in-employee"


class TestAutocomplete:
    def test_widget_shows_the_selected_user(self, admin_client):
        badge = BadgeFactory(user__username="picked")

        with assert_num_queries_per_db({"default": SESSION_AND_USER + 2, "employee": 1}):
            response = admin_client.get(f"/admin/hr/badge/{badge.pk}/change/")

        assert f'<option value="{badge.user_id}" selected>picked</option>' in text(response)

    def test_view_searches_the_users_database(self, admin_client):
        alice = UserFactory(username="alice")
        UserFactory(username="bob")

        response = admin_client.get(
            "/admin/autocomplete/",
            {"app_label": "hr", "model_name": "badge", "field_name": "user", "term": "ali"},
        )

        assert response.status_code == 200
        assert json.loads(response.content)["results"] == [{"id": str(alice.pk), "text": "alice"}]

    def test_view_reads_the_database_a_field_names(self, admin_client):
        AutoTarget.objects.create(name="wrong-database")
        shadow = AutoTarget.objects.using("employee").create(name="right-database")

        response = admin_client.get(
            "/crossdb-admin/autocomplete/",
            {"app_label": "inventory", "model_name": "label", "field_name": "target", "term": "d"},
        )

        assert json.loads(response.content)["results"] == [
            {"id": str(shadow.pk), "text": "right-database"}
        ]

    def test_view_refuses_a_field_no_admin_declares(self, admin_client):
        """hr.Order.buyer points to AutoTarget too, but no admin of this site offers it."""
        AutoTarget.objects.create(name="secret")
        AutoTarget.objects.using("employee").create(name="secret too")

        with assert_num_queries_per_db({"default": SESSION_AND_USER}):
            response = admin_client.get(
                "/crossdb-admin/autocomplete/",
                {"app_label": "hr", "model_name": "order", "field_name": "buyer", "term": "s"},
            )

        assert response.status_code == 403

    def test_view_refuses_a_field_its_admin_does_not_declare(self, admin_client, monkeypatch):
        AutoTarget.objects.using("employee").create(name="secret")
        monkeypatch.setattr(site.get_model_admin(Label), "autocomplete_fields", [])

        response = admin_client.get(
            "/crossdb-admin/autocomplete/",
            {"app_label": "inventory", "model_name": "label", "field_name": "target", "term": "s"},
        )

        assert response.status_code == 403

    def test_view_serves_a_field_an_inline_declares(self, admin_client, monkeypatch):
        inline = type(
            "LabelInline",
            (admin.TabularInline,),
            {"model": Label, "fk_name": None, "autocomplete_fields": ["target"]},
        )
        monkeypatch.setattr(site.get_model_admin(Label), "autocomplete_fields", [])
        monkeypatch.setattr(site.get_model_admin(Asset), "inlines", [inline])
        shadow = AutoTarget.objects.using("employee").create(name="shown")

        response = admin_client.get(
            "/crossdb-admin/autocomplete/",
            {"app_label": "inventory", "model_name": "label", "field_name": "target", "term": "s"},
        )

        assert response.status_code == 200
        assert json.loads(response.content)["results"] == [{"id": str(shadow.pk), "text": "shown"}]

    def test_widget_shows_the_selected_target_from_the_database_a_field_names(self, admin_client):
        AutoTarget.objects.create(name="wrong-database")
        shadow = AutoTarget.objects.using("employee").create(name="right-database")
        label = Label.objects.create(text="l", target_id=shadow.pk)

        response = admin_client.get(f"/crossdb-admin/inventory/label/{label.pk}/change/")

        assert f'<option value="{shadow.pk}" selected>right-database</option>' in text(response)


class AssetInline(admin.TabularInline):
    model = Asset
    fk_name = "owner"
    extra = 1


def inline_post(employee: Employee, kept: Asset, gone: Asset, new_name: str) -> dict[str, str]:
    """The change form of ``employee``: rename it, edit ``kept``, delete ``gone``, add one."""
    return {
        "name": "after",
        "user": str(employee.user_id),
        "status": "active",
        "assets-TOTAL_FORMS": "3",
        "assets-INITIAL_FORMS": "2",
        "assets-MIN_NUM_FORMS": "0",
        "assets-MAX_NUM_FORMS": "1000",
        "assets-0-id": str(kept.pk),
        "assets-0-owner": str(employee.pk),
        "assets-0-name": "laptop 2",
        "assets-0-status": "in_use",
        "assets-1-id": str(gone.pk),
        "assets-1-owner": str(employee.pk),
        "assets-1-name": "phone",
        "assets-1-status": "in_use",
        "assets-1-DELETE": "on",
        "assets-2-owner": str(employee.pk),
        "assets-2-name": new_name,
        "assets-2-status": "spare",
    }


class TestInlines:
    """Employee's change page (database employee) with its assets (database asset) inline."""

    @pytest.fixture(autouse=True)
    def inline(self, monkeypatch):
        monkeypatch.setattr(employee_admin(), "inlines", [AssetInline])

    def test_the_change_page_lists_the_rows_from_their_database(self, admin_client):
        employee = EmployeeFactory()
        AssetFactory(name="laptop", owner=employee)
        AssetFactory(name="elsewhere")

        ContentType.objects.clear_cache()  # read once per process: count it every time
        # default: the session, the user, the content type and the raw-id user's label.
        with assert_num_queries_per_db({"default": 4, "employee": 1, "asset": 1}):
            response = admin_client.get(change_url(employee))

        assert response.status_code == 200
        formset = response.context["inline_admin_formsets"][0].formset
        assert [form.instance.name for form in formset.initial_forms] == ["laptop"]

    def test_saving_edits_adds_and_deletes_rows_in_their_database(self, admin_client):
        employee = EmployeeFactory(name="before")
        kept = AssetFactory(name="laptop", owner=employee)
        gone = AssetFactory(name="phone", owner=employee)

        ContentType.objects.clear_cache()
        # default: the session, the request's user, the form's user (read, then validated),
        # the content type and the LogEntry; employee and asset: a transaction each.
        with assert_num_queries_per_db({"default": 6, "employee": 4, "asset": 8}):
            response = admin_client.post(
                change_url(employee), inline_post(employee, kept, gone, "desk")
            )

        assert response.status_code == 302, response.context and response.context["errors"]
        assert sorted(Asset.objects.values_list("name", "owner_id")) == [
            ("desk", employee.pk),
            ("laptop 2", employee.pk),
        ]
        employee.refresh_from_db()
        assert employee.name == "after"

    def test_a_row_the_database_refuses_changes_nothing_in_either_database(self, admin_client):
        """As in one database: the inline rows before it are not kept, nor the employee."""
        employee = EmployeeFactory(name="before")
        kept = AssetFactory(name="laptop", owner=employee)
        gone = AssetFactory(name="phone", owner=employee)
        connection = connections["asset"]
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TRIGGER refuse_boom BEFORE INSERT ON inventory_asset "
                "WHEN NEW.name = 'boom' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        try:
            with pytest.raises(IntegrityError, match="refused"):
                admin_client.post(change_url(employee), inline_post(employee, kept, gone, "boom"))
        finally:
            with connection.cursor() as cursor:
                cursor.execute("DROP TRIGGER refuse_boom")

        assert sorted(Asset.objects.values_list("name", flat=True)) == ["laptop", "phone"]
        employee.refresh_from_db()
        assert employee.name == "before"


def test_the_module_registers_nothing():
    assert not [model for model in admin.site._registry if model._meta.app_label == "crossdb"]


@pytest.fixture
def rf_request():
    request = RequestFactory().get("/")
    request.user = User(is_superuser=True, is_staff=True, is_active=True)
    return request


# Order is registered for its select widgets; keep the import used by the checks above.
assert admin.site.is_registered(Order) and admin.site.is_registered(Badge)
