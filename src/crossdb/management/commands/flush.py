"""
Django's flush, with capture suspended on the flushed database.

Emptying one database must not cascade into the others through the capture
triggers: flush (and every ``TransactionTestCase`` teardown, which calls it)
runs inside ``crossdb.capture.suspended(using=database)``.
"""

from typing import Any

from django.core.management.commands import flush

from crossdb.capture import suspended


class Command(flush.Command):
    def handle(self, **options: Any) -> None:
        with suspended(using=options["database"]):
            super().handle(**options)
