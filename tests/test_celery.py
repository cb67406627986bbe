"""The optional Celery integration, eagerly and through a real Redis broker."""

from __future__ import annotations

import os
import socket

import pytest
from celery import Celery, shared_task
from celery.contrib.testing.worker import start_worker

from crossdb.tasks import start_verification, verify_link_partition, verify_links_in_parallel
from tests.helpers import without_envelope
from tests.hr.models import Employee
from tests.test_verify_links import employees_with_orphans, verify

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

BROKER = "redis://127.0.0.1:6379/15"


@pytest.fixture
def app():
    app = Celery("crossdb-tests", set_as_current=True)
    app.conf.update(broker_url=BROKER, result_backend=BROKER, task_always_eager=False)
    app.set_default()
    yield app
    app.close()


@pytest.fixture
def broker() -> None:
    """A real Redis: on CI a missing broker fails the test, locally it skips it."""
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError:
        message = "Redis is not reachable at 127.0.0.1:6379"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true: the broker must run)")
        pytest.skip(f"{message}; start it to run this test")


def test_one_partition_task_returns_the_link_report(app):
    employees_with_orphans(4, [900001])
    report = verify_link_partition.apply(args=("hr.Employee.user", 0, 1)).get()
    assert (report["model"], report["checked"], report["orphans"], report["sample"]) == (
        "hr.Employee",
        5,
        1,
        [900001],
    )


def test_eager_fan_out_matches_the_command(app):
    app.conf.task_always_eager = True
    employees_with_orphans(30, [900001, 900002, 900050])

    report = verify_links_in_parallel(["hr.Employee", "hr.Order"], partitions=3)

    assert without_envelope(report) == without_envelope(verify("hr.Employee", "hr.Order")[1])


def test_fan_out_through_a_real_broker(app, broker):
    employees_with_orphans(40, [900001, 900002, 900003])

    app.control.purge()  # messages a previous, interrupted run may have left
    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=30):
        report = verify_links_in_parallel(["hr.Employee.user"], partitions=4, timeout=60)

    assert report["total_orphans"] == 3
    [link] = report["links"]
    assert (link["checked"], sorted(link["sample"])) == (43, [900001, 900002, 900003])
    assert Employee.objects.count() == 43


@shared_task(name="tests.remember_report")
def remember_report(report):
    REPORTS.append(report)
    return report["total_orphans"]


REPORTS: list[dict] = []


def test_beat_entry_point_runs_the_chord_and_the_callback(app, broker):
    employees_with_orphans(10, [900001])
    REPORTS.clear()
    app.control.purge()
    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=30):
        chord_id = start_verification.apply(
            kwargs={
                "labels": ["hr.Employee.user"],
                "partitions": 2,
                "callback": "tests.remember_report",
            }
        ).get()
        app.AsyncResult(chord_id).get(timeout=60)
    [report] = REPORTS
    assert report["total_orphans"] == 1
    assert report["links"][0]["checked"] == 11
