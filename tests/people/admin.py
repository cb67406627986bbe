"""The targets' admins: ordering and search for the choices, raw-id and autocomplete widgets."""

from django.contrib import admin

from crossdb.admin import CrossDBModelAdmin
from tests.people.models import AutoTarget, BigTarget, CodeTarget, SlugTarget, UUIDTarget


class TargetAdmin(CrossDBModelAdmin):
    list_display = ["name"]
    ordering = ["name"]
    search_fields = ["name"]


for model in (AutoTarget, BigTarget, CodeTarget, SlugTarget, UUIDTarget):
    admin.site.register(model, TargetAdmin)
