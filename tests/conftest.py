from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.db import connections

from tests.people.models import AutoTarget

# Databases that hold a stray ``people_autotarget`` table with rows of their own, to catch
# a queryset compiled as a subquery against the wrong database (which would read them).
SHADOW_ALIASES = ("employee", "asset")


def _probe_postgresql(conf: dict) -> None:
    import psycopg

    psycopg.connect(
        host=conf["HOST"],
        port=conf["PORT"],
        user=conf["USER"],
        dbname="postgres",
        connect_timeout=3,
    ).close()


def _probe_mysql(conf: dict) -> None:
    import MySQLdb

    MySQLdb.connect(
        host=conf["HOST"],
        port=int(conf["PORT"]),
        user=conf["USER"],
        password=conf["PASSWORD"],
        connect_timeout=3,
    ).close()


PROBES = {
    "django.db.backends.postgresql": ("PostgreSQL", _probe_postgresql),
    "django.db.backends.mysql": ("MariaDB", _probe_mysql),
}


def unreachable_servers() -> list[str]:
    problems = []
    for conf in settings.DATABASES.values():
        if conf["ENGINE"] not in PROBES:
            continue
        label, probe = PROBES[conf["ENGINE"]]
        try:
            probe(conf)
        except Exception as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            problems.append(f"{label} unreachable at {conf['HOST']}:{conf['PORT']} ({first_line})")
    return problems


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    # Exiting here rather than at session start makes pytest print the reason once.
    if settings.TOPOLOGY != "real":
        return
    problems = unreachable_servers()
    if not problems:
        return
    if os.environ.get("CI") == "true":
        pytest.exit(f"REAL TOPOLOGY FAILED (CI=true): {'; '.join(problems)}", returncode=3)
    pytest.exit(
        f"REAL TOPOLOGY SKIPPED: {'; '.join(problems)}. Start the servers to run it.",
        returncode=0,
    )


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        for alias in SHADOW_ALIASES:
            with connections[alias].schema_editor() as editor:
                editor.create_model(AutoTarget)
    yield
