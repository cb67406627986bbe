from django.contrib import admin

from tests.integrity.models import Account

admin.site.register(Account)
