from __future__ import annotations

from django.apps import AppConfig


class CrossDBConfig(AppConfig):
    name = "crossdb"
    verbose_name = "Cross-database relations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from crossdb import checks, serialization  # noqa: F401  (checks registers itself)

        serialization.install()
