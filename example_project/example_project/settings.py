"""
The example project: three databases, three engines, one hand-kept user_id made a real field.

    default   auth.User              SQLite file, or PostgreSQL: CROSSDB_EXAMPLE_DEFAULT=postgres
    employee  employee_app.Employee  SQLite file, or MariaDB: CROSSDB_EXAMPLE_EMPLOYEE=mariadb
    asset     asset_app.Asset        SQLite file

Connection details for the servers come from CROSSDB_EXAMPLE_PG_* and CROSSDB_EXAMPLE_MARIADB_*
(HOST, PORT, USER, PASSWORD, NAME); see docs/installation.rst.
"""

import os
from collections.abc import Callable
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "example-project-only-never-use-in-production"
DEBUG = True
ALLOWED_HOSTS: list[str] = []

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "crossdb",
    "employee_app",
    "asset_app",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"


def env(name: str, default: str) -> str:
    return os.environ.get(f"CROSSDB_EXAMPLE_{name}", default)


def sqlite(alias: str) -> dict[str, object]:
    directory = Path(env("SQLITE_DIR", str(BASE_DIR)))
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": directory / f"{alias}.sqlite3"}


def postgres() -> dict[str, object]:
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": env("PG_HOST", "127.0.0.1"),
        "PORT": env("PG_PORT", "5432"),
        "USER": env("PG_USER", "postgres"),
        "PASSWORD": env("PG_PASSWORD", ""),
        "NAME": env("PG_NAME", "crossdb_example_default"),
    }


def mariadb() -> dict[str, object]:
    try:
        import MySQLdb  # noqa: F401  (mysqlclient, when it is installed)
    except ImportError:
        import pymysql

        pymysql.install_as_MySQLdb()
    return {
        "ENGINE": "django.db.backends.mysql",
        "HOST": env("MARIADB_HOST", "127.0.0.1"),
        "PORT": env("MARIADB_PORT", "3306"),
        "USER": env("MARIADB_USER", "root"),
        "PASSWORD": env("MARIADB_PASSWORD", ""),
        "NAME": env("MARIADB_NAME", "crossdb_example_employee"),
        "OPTIONS": {"charset": "utf8mb4", "init_command": "SET sql_mode='STRICT_TRANS_TABLES'"},
    }


def choose(
    alias: str, server_name: str, server: Callable[[], dict[str, object]]
) -> dict[str, object]:
    choice = env(alias.upper(), "sqlite")
    if choice == "sqlite":
        return sqlite(alias)
    if choice == server_name:
        return server()
    raise ImproperlyConfigured(
        f"CROSSDB_EXAMPLE_{alias.upper()}={choice!r}: use 'sqlite' or {server_name!r}."
    )


DATABASES = {
    "default": choose("default", "postgres", postgres),
    "employee": choose("employee", "mariadb", mariadb),
    "asset": sqlite("asset"),
}

# One router for the whole project instead of one hand-written router per app.
DATABASE_ROUTERS = ["crossdb.routers.CrossDBRouter"]
CROSSDB_ROUTES = {
    "employee_app": "employee",
    "asset_app": "asset",
}

# The models keep Django's default manager, so that the tour can show what a plain QuerySet
# refuses (select_related("user") raises); crossdb.W010 would suggest CrossDBManager.
SILENCED_SYSTEM_CHECKS = ["crossdb.W010"]
