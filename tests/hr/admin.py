from django.contrib import admin

from crossdb.admin import CrossDBModelAdmin
from tests.hr.models import Badge, Employee, Order


@admin.register(Employee)
class EmployeeAdmin(CrossDBModelAdmin):
    list_display = ["name", "user", "status"]
    raw_id_fields = ["user"]
    search_fields = ["name", "user__username"]


@admin.register(Badge)
class BadgeAdmin(CrossDBModelAdmin):
    list_display = ["title", "user"]
    autocomplete_fields = ["user"]


@admin.register(Order)
class OrderAdmin(CrossDBModelAdmin):
    list_display = ["note", "buyer", "code", "slug_target"]
    raw_id_fields = ["slug_target"]
