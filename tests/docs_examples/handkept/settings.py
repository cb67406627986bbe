"""The example project's settings and databases, with only the hand-kept app's employee_app."""

from example_project.settings import *  # noqa: F403

INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "crossdb", "employee_app"]
