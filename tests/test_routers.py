"""CrossDBRouter: one resolver for reads, writes and migrations; its cache follows settings."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest
from django.test import override_settings

import crossdb
from crossdb.routers import CrossDBRouter
from tests.hr.models import Badge, Employee


@pytest.fixture
def router() -> CrossDBRouter:
    return CrossDBRouter()


def test_routes_and_migrations_agree(router):
    with override_settings(CROSSDB_ROUTES={"hr": "employee", "hr.Badge": "asset"}):
        assert router.db_for_read(Employee) == router.db_for_write(Employee) == "employee"
        assert router.db_for_read(Badge) == "asset"
        assert router.allow_migrate("asset", "hr", "badge")
        assert not router.allow_migrate("employee", "hr", "badge")
        assert router.allow_migrate("employee", "hr", "employee")
        assert router.allow_migrate("employee", "hr")
        assert router.allow_migrate("default", "auth", "user")


def test_model_names_match_in_any_case(router):
    with override_settings(CROSSDB_ROUTES={"hr.badge": "asset", "hr.EMPLOYEE": "default"}):
        assert router.db_for_read(Badge) == "asset"
        assert router.db_for_read(Employee) == "default"
        assert router.allow_migrate("asset", "hr", "Badge")


def test_the_cache_is_cleared_when_the_settings_change(router):
    assert router.db_for_read(Employee) == "employee"
    with override_settings(CROSSDB_ROUTES={}):
        assert router.db_for_read(Employee) == "default"
        with override_settings(CROSSDB_DEFAULT_DATABASE="asset"):
            assert router.db_for_read(Employee) == "asset"
            assert router.allow_migrate("asset", "hr", "employee")
        assert router.db_for_read(Employee) == "default"
    assert router.db_for_read(Employee) == "employee"


def test_other_settings_keep_the_cache(router):
    router.db_for_read(Employee)
    with override_settings(USE_TZ=False):
        assert router._cache


def test_a_dropped_router_is_not_kept_alive_by_the_signal():
    import weakref

    reference = weakref.ref(CrossDBRouter())
    gc.collect()
    assert reference() is None


def test_version_comes_from_the_package_metadata():
    from importlib import metadata

    assert crossdb.__version__ == metadata.version("django-crossdb-toolkit")


def test_version_falls_back_outside_an_installed_package(tmp_path):
    code = (
        "from importlib import metadata\n"
        "def missing(name): raise metadata.PackageNotFoundError(name)\n"
        "metadata.version = missing\n"
        "import crossdb; print(crossdb.__version__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0+unknown"
