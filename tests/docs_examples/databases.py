"""Fresh databases for a subprocess that runs with the example project's settings."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from tests.docs_examples.blocks import REPO

PYTHONPATH = os.pathsep.join(str(REPO / part) for part in ("example_project", "src", "."))


def _server_connections() -> tuple[object, object]:
    import MySQLdb
    import psycopg

    postgres, mariadb = settings.DATABASES["default"], settings.DATABASES["employee"]
    pg = psycopg.connect(
        host=postgres["HOST"],
        port=postgres["PORT"],
        user=postgres["USER"],
        dbname="postgres",
        autocommit=True,
    )
    my = MySQLdb.connect(
        host=mariadb["HOST"], port=int(mariadb["PORT"]), user=mariadb["USER"], password=""
    )
    return pg, my


@contextmanager
def example_databases(directory: Path) -> Iterator[dict[str, str]]:
    """
    The environment for the example project's settings on databases of their own: SQLite files
    in ``directory``; on the real topology also a new PostgreSQL ``default`` and a new MariaDB
    ``employee``, dropped afterwards.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if name != "DJANGO_SETTINGS_MODULE" and not name.startswith("CROSSDB_EXAMPLE_")
    }
    env.update(CROSSDB_EXAMPLE_SQLITE_DIR=str(directory), PYTHONPATH=PYTHONPATH)
    if settings.TOPOLOGY != "real":
        yield env
        return
    name = f"crossdb_docs_{uuid.uuid4().hex[:10]}"
    pg, my = _server_connections()
    pg.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    my.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")  # type: ignore[attr-defined]
    env.update(
        CROSSDB_EXAMPLE_DEFAULT="postgres",
        CROSSDB_EXAMPLE_PG_NAME=name,
        CROSSDB_EXAMPLE_EMPLOYEE="mariadb",
        CROSSDB_EXAMPLE_MARIADB_NAME=name,
    )
    try:
        yield env
    finally:
        my.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")  # type: ignore[attr-defined]
        my.close()  # type: ignore[attr-defined]
        pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
        pg.close()  # type: ignore[attr-defined]
