from __future__ import annotations

from django.apps import AppConfig


class CrossDBConfig(AppConfig):
    name = "crossdb"
    verbose_name = "Cross-database relations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The checks modules register their checks when imported.
        from crossdb import (  # noqa: F401
            admin_checks,
            checks,
            checks_relations,
            checks_settings,
            serialization,
        )

        serialization.install()
