"""
Settings of the benchmarks; ``BENCH_TOPOLOGY`` picks the databases.

- ``sqlite``: three SQLite files under ``benchmarks/.data/``: ``default``
  (Target), ``source`` (Source) and ``same`` (SameTarget + SameSource).
- ``real``: ``default`` on PostgreSQL (database ``bench_crossdb_pg``),
  ``source`` on MariaDB (``bench_crossdb_source``); the same-database twins
  (``same``) also live in ``bench_crossdb_pg``, on PostgreSQL. ``pg_ssb`` is
  that PostgreSQL database again, with server-side binding (the 65,535
  parameter limit), for the "limits" section only.

Only the ``bench_crossdb_*`` databases and ``benchmarks/.data/`` are touched:
never the test databases or the example project's.
"""

import os
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / ".data"

TOPOLOGY = os.environ.get("BENCH_TOPOLOGY", "sqlite")
if TOPOLOGY not in ("sqlite", "real"):
    raise ValueError(f"BENCH_TOPOLOGY must be 'sqlite' or 'real', not {TOPOLOGY!r}.")

# Lets two checkouts benchmark the real topology at once without emptying each other's tables.
SUFFIX = os.environ.get("BENCH_DB_SUFFIX", "")
PG_NAME = f"bench_crossdb_pg{SUFFIX}"
MARIADB_NAME = f"bench_crossdb_source{SUFFIX}"


def _sqlite(name: str) -> dict:
    DATA_DIR.mkdir(exist_ok=True)
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(DATA_DIR / f"{name}.sqlite3")}


def _postgresql(**options: object) -> dict:
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "USER": "postgres",
        "PASSWORD": "",
        "NAME": PG_NAME,
        "OPTIONS": dict(options),
    }


if TOPOLOGY == "real":
    try:
        import MySQLdb  # noqa: F401
    except ImportError:
        import pymysql

        pymysql.install_as_MySQLdb()
    DATABASES = {
        "default": _postgresql(),
        "source": {
            "ENGINE": "django.db.backends.mysql",
            "HOST": "127.0.0.1",
            "PORT": "3306",
            "USER": "root",
            "PASSWORD": "",
            "NAME": MARIADB_NAME,
            "OPTIONS": {"charset": "utf8mb4"},
        },
        "same": _postgresql(),
        "pg_ssb": _postgresql(server_side_binding=True),
    }
else:
    DATABASES = {alias: _sqlite(alias) for alias in ("default", "source", "same")}

# The databases that hold tables (pg_ssb is an alias of one of them).
MIGRATED_ALIASES = ("default", "source", "same")

DATABASE_ROUTERS = ["crossdb.routers.CrossDBRouter"]
CROSSDB_ROUTES = {
    "benchapp.Source": "source",
    "benchapp.SameTarget": "same",
    "benchapp.SameSource": "same",
    # bench_capture.py: one captured link each way (targets with triggers in both databases).
    "benchapp.CaptureRef": "source",
    "benchapp.BackCaptureTarget": "source",
    "benchapp.BackCaptureTwin": "source",
}

INSTALLED_APPS = ["crossdb", "benchmarks.benchapp"]
SECRET_KEY = "benchmarks-only"
DEBUG = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
