from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CrossDBConfig(AppConfig):
    name = "crossdb"
    verbose_name = "Cross-database relations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The checks modules register their checks when imported.
        from crossdb import (  # noqa: F401
            admin_checks,
            capture_checks,
            checks,
            checks_relations,
            checks_settings,
            serialization,
        )
        from crossdb.capture import install_after_migrate

        serialization.install()
        post_migrate.connect(
            install_after_migrate, sender=self, dispatch_uid="crossdb.install_after_migrate"
        )
