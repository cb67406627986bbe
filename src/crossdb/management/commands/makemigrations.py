"""Django's makemigrations, writing the capture triggers' operations too (crossdb.autodetector)."""

from django.core.management.commands import makemigrations

from crossdb.autodetector import CaptureAutodetector


class Command(makemigrations.Command):
    autodetector = CaptureAutodetector
