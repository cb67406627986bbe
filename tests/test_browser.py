"""
The admin end to end, in Debian's chromium driven by Playwright: log in, read the Employee
list, change an employee's user through the raw-id input, save, read the list again.

Playwright never downloads a browser here: it drives /usr/bin/chromium (Debian's package
``chromium``). Without it the test fails when CI=true and is skipped otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test.utils import override_settings
from pytest_django.live_server_helper import LiveServer

from tests.factories import EmployeeFactory, UserFactory
from tests.hr.models import Employee

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.fixture(scope="session")
def live_server():
    """
    pytest-django's live server, started with a STATIC_URL.

    Django's live server answers every request with a TypeError while STATIC_URL is unset, as
    it is in tests/settings.py; the setting only matters while the server starts.
    """
    with override_settings(STATIC_URL="/static/"):
        server = LiveServer("localhost")
    yield server
    server.stop()


@contextmanager
def chromium() -> Iterator[Any]:
    """The browser, for the duration of the block; Django's ORM refuses to run inside it."""
    problem = missing_browser()
    if problem and os.environ.get("CI") == "true":
        pytest.fail(f"BROWSER TEST FAILED (CI=true): {problem}", pytrace=False)
    if problem:
        pytest.skip(f"browser test skipped: {problem}")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread, hence the ORM's refusal.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def test_edit_an_employees_user_in_the_admin(live_server):
    User.objects.create_superuser("admin", "admin@example.com", "pw")
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    employee = EmployeeFactory(name="Ada", user=alice)
    EmployeeFactory(name="Grace", user=UserFactory(username="carol"))

    with chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(20_000)
        page.goto(f"{live_server.url}/admin/login/?next=/admin/hr/employee/")
        page.fill("#id_username", "admin")
        page.fill("#id_password", "pw")
        page.click("input[type=submit]")

        page.wait_for_url("**/admin/hr/employee/")
        assert page.locator("td.field-user").all_inner_texts() == ["carol", "alice"]

        page.click("text=Ada")
        page.wait_for_url(f"**/admin/hr/employee/{employee.pk}/change/")
        assert page.input_value("#id_user") == str(alice.pk)
        assert page.locator("#id_user ~ strong").inner_text() == "alice"
        page.fill("#id_user", str(bob.pk))
        page.click("input[name=_save]")

        page.wait_for_url("**/admin/hr/employee/")
        assert page.locator("td.field-user").all_inner_texts() == ["carol", "bob"]

    assert Employee.objects.using("employee").get(pk=employee.pk).user_id == bob.pk
