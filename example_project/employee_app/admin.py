from django.contrib import admin

from crossdb.admin import CrossDBModelAdmin
from employee_app.models import Employee


@admin.register(Employee)
class EmployeeAdmin(CrossDBModelAdmin):
    # "user" is shown with one query on "default" per page; the search reads it there too.
    list_display = ["employee_id", "position", "user"]
    search_fields = ["employee_id", "position", "user__username"]
    raw_id_fields = ["user"]
    # The assets' autocomplete pages through employees in this order.
    ordering = ["employee_id"]
