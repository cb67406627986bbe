from django.contrib import admin

from asset_app.models import Asset
from crossdb.admin import CrossDBModelAdmin


@admin.register(Asset)
class AssetAdmin(CrossDBModelAdmin):
    # Both employees are read from "employee" in one query per page.
    list_display = ["name", "serial", "status", "assigned_to", "managed_by"]
    list_filter = ["status"]
    search_fields = ["name", "serial", "assigned_to__employee_id", "assigned_to__user__username"]
    autocomplete_fields = ["assigned_to", "managed_by"]
