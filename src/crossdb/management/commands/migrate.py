"""Django's migrate with crossdb's autodetector, which check commands.E001 wants to match."""

from django.core.management.commands import migrate

from crossdb.autodetector import CaptureAutodetector


class Command(migrate.Command):
    autodetector = CaptureAutodetector
