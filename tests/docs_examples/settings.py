"""
The settings tests/docs_examples/runner.py runs the docs' examples with: the example project's,
with its admin installed (as example_project/example_project/urls.py expects) and the proxies of
``tests.docs_examples.models``, which some pages use.
"""

from example_project.settings import *  # noqa: F403
from example_project.settings import CROSSDB_ROUTES, INSTALLED_APPS

# What the admin needs, as the test suite has it.
from tests.settings import MIDDLEWARE, PASSWORD_HASHERS, STATIC_URL, TEMPLATES  # noqa: F401

INSTALLED_APPS = [
    *INSTALLED_APPS,
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "tests.docs_examples",
]
CROSSDB_ROUTES = {**CROSSDB_ROUTES, "docs_examples": "employee", "docs_examples.Asset": "asset"}
