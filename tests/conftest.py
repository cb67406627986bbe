"""
Session set-up: the real topology's servers are probed before anything runs.

The stray ``people_autotarget`` tables in ``employee`` and ``asset`` (``helpers.SHADOW_ALIASES``)
are migrated there by ``tests.routers.ShadowTableRouter``.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.conf import settings


def _probe_postgresql(conf: dict[str, Any]) -> None:
    import psycopg

    psycopg.connect(
        host=conf["HOST"],
        port=conf["PORT"],
        user=conf["USER"],
        dbname="postgres",
        connect_timeout=3,
    ).close()


def _probe_mysql(conf: dict[str, Any]) -> None:
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
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            problems.append(f"{label} unreachable at {conf['HOST']}:{conf['PORT']} ({reason})")
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
