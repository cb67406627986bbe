"""
Settings for Django's runtests.py, both ends of every relation in one database.

Django's own tests/test_sqlite.py plus the conformance harness: the import hook that swaps
the test models' fields (when the runner passes a plan) and the recording test runner.
"""

from conformance import harness

harness.install()

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3"},
    "other": {"ENGINE": "django.db.backends.sqlite3"},
}
SECRET_KEY = "django_tests_secret_key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = False
TEST_RUNNER = "conformance.testrunner.RecordingRunner"
