"""
Settings for the test suite.

CROSSDB_TEST_TOPOLOGY picks the databases behind the three aliases:

- ``sqlite`` (default): three SQLite files under ``<repo>/.test-dbs/``, so the
  databases are as separate as real servers are.
- ``real``: ``default`` on PostgreSQL, ``employee`` on MariaDB, ``asset`` on a
  SQLite file, as in the seed project.
"""

import os
from importlib import import_module
from pathlib import Path
from typing import Any

REPO_DIR = Path(__file__).resolve().parent.parent
TEST_DBS_DIR = REPO_DIR / ".test-dbs"
TEST_DBS_DIR.mkdir(exist_ok=True)

TOPOLOGY = os.environ.get("CROSSDB_TEST_TOPOLOGY", "sqlite")
# Lets two test runs share a checkout without sharing test databases.
SUFFIX = os.environ.get("CROSSDB_TEST_DB_SUFFIX", "")
if TOPOLOGY not in ("sqlite", "real"):
    raise ValueError(f"CROSSDB_TEST_TOPOLOGY must be 'sqlite' or 'real', not {TOPOLOGY!r}.")


def sqlite_database(alias: str) -> dict[str, Any]:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(TEST_DBS_DIR / f"{TOPOLOGY}-{alias}.sqlite3"),
        "TEST": {"NAME": str(TEST_DBS_DIR / f"test-{TOPOLOGY}-{alias}{SUFFIX}.sqlite3")},
        # Writers in several processes (propagate_deletions runs, workers) queue for the
        # write lock at BEGIN instead of failing with "database is locked" mid-transaction.
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 30},
    }


def install_mysql_driver() -> None:
    """Use mysqlclient when it is installed, else PyMySQL posing as MySQLdb."""
    try:
        import_module("MySQLdb")
    except ImportError:
        import_module("pymysql").install_as_MySQLdb()


if TOPOLOGY == "real":
    install_mysql_driver()
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": "127.0.0.1",
            "PORT": "5432",
            "USER": "postgres",
            "PASSWORD": "",
            "NAME": "crossdb_default",
            "TEST": {"NAME": f"test_crossdb_default{SUFFIX}"},
        },
        "employee": {
            "ENGINE": "django.db.backends.mysql",
            "HOST": "127.0.0.1",
            "PORT": "3306",
            "USER": "root",
            "PASSWORD": "",
            "NAME": "crossdb_employee",
            "TEST": {
                "NAME": f"test_crossdb_employee{SUFFIX}",
                "CHARSET": "utf8mb4",
                "COLLATION": "utf8mb4_unicode_ci",
            },
        },
        "asset": sqlite_database("asset"),
    }
else:
    DATABASES = {alias: sqlite_database(alias) for alias in ("default", "employee", "asset")}

if os.environ.get("CROSSDB_TEST_BROKEN_TARGET"):
    # A test's way to make the users' database unreachable for a subprocess.
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["CROSSDB_TEST_BROKEN_TARGET"],
        "TEST": {"NAME": os.environ["CROSSDB_TEST_BROKEN_TARGET"]},
    }

for _entry in filter(None, os.environ.get("CROSSDB_TEST_CLOSED_PORT", "").split(",")):
    # A test's way to point an alias at a server that refuses connections (127.0.0.1:1):
    # ``default`` (PostgreSQL) or ``default:mysql`` (MariaDB); several separated by commas.
    _alias, _, _engine = _entry.partition(":")
    if _engine == "mysql":
        install_mysql_driver()
    DATABASES[_alias] = {
        "ENGINE": f"django.db.backends.{_engine or 'postgresql'}",
        "HOST": "127.0.0.1",
        "PORT": "1",
        "USER": "root" if _engine == "mysql" else "postgres",
        "NAME": "closed",
        "TEST": {"NAME": "closed"},
        "OPTIONS": {"connect_timeout": 3},
    }

if os.environ.get("CROSSDB_TEST_USE_TEST_DATABASES"):
    # For manage.py commands run in a subprocess by a test: use the test session's databases.
    for _conf in DATABASES.values():
        _conf["NAME"] = _conf["TEST"]["NAME"]

if os.environ.get("CROSSDB_TEST_CELERY_KEY_PREFIX"):
    # For the Celery worker a test starts: the test run's own broker keys (tests/test_celery.py).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "global_keyprefix": os.environ["CROSSDB_TEST_CELERY_KEY_PREFIX"]
    }

DATABASE_ROUTERS = ["tests.routers.ShadowTableRouter", "crossdb.routers.CrossDBRouter"]
CROSSDB_ROUTES = {
    "hr": "employee",
    "inventory": "asset",
    # on_delete tests: Account stays in default, everything pointing at it is in employee.
    "integrity": "employee",
    "integrity.Account": "default",
    "integrity.Shelf": "asset",
    "integrity.Left": "default",
    "integrity.Seal": "asset",
    "integrity.Site": "default",
    "integrity.Tag": "asset",
    "integrity.Sticker": "default",
    "integrity.CapAccount": "default",
    "integrity.CapHolder": "default",
    "integrity.CapToken": "asset",
    "integrity.CapUse": "default",
    "integrity.CapRoom": "default",
    "integrity.CapBooking": "asset",
    # select_related across databases: orders in employee, parcels in asset.
    "orders": "employee",
    "orders.Parcel": "asset",
}

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.admin",
    "django.contrib.messages",
    "crossdb",
    "tests.people",
    "tests.hr",
    "tests.inventory",
    "tests.integrity",
    "tests.orders",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

ROOT_URLCONF = "tests.urls"
STATIC_URL = "/static/"
SECRET_KEY = "crossdb-tests-not-secret"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
# Hashing passwords properly makes every user factory call slow.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
