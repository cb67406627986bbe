"""
The optional Celery integration, eagerly and through a real Redis broker; and the beat
schedule of docs/scheduling.rst, verbatim, on a real prefork worker (a subprocess).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from celery import Celery, shared_task
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from crossdb.models import PendingPropagation
from crossdb.tasks import (
    propagate_deletions,
    start_verification,
    verify_link_partition,
    verify_links_in_parallel,
)
from tests.docs_examples.celery_app import documented_celery_module, documented_celery_namespace
from tests.helpers import without_envelope
from tests.hr.models import Employee
from tests.integrity.models import Membership
from tests.test_deletion import all_pending
from tests.test_propagate_deletions import crashed_deletion  # noqa: F401  (a fixture)
from tests.test_verify_links import employees_with_orphans, verify

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

BROKER = "redis://127.0.0.1:6379/15"
# The prefork worker's own Redis database, apart from the other tests'.
WORKER_BROKER = "redis://127.0.0.1:6379/12"
# Every broker key of this run (queues, the workers' control channels) starts with it,
# so two test runs on one machine neither take nor purge each other's tasks.
KEY_PREFIX = f"crossdb-tests-{uuid.uuid4().hex[:12]}:"
TRANSPORT_OPTIONS = {"global_keyprefix": KEY_PREFIX}
REPO = Path(__file__).resolve().parent.parent
WORKER = [sys.executable, "-m", "celery", "-A", "docs_celery_app", "worker", "--pool", "prefork"]
WORKER += ["--concurrency", "4", "--loglevel", "INFO"]
WORKER += ["--without-gossip", "--without-mingle", "--without-heartbeat"]


@pytest.fixture
def app():
    app = Celery("crossdb-tests", set_as_current=True)
    app.conf.update(
        broker_url=BROKER,
        result_backend=BROKER,
        task_always_eager=False,
        broker_transport_options=TRANSPORT_OPTIONS,
    )
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


@pytest.mark.usefixtures("crashed_deletion")
def test_the_propagation_task_returns_the_commands_document(app):
    report = propagate_deletions.apply(kwargs={"older_than": 0}).get()

    assert report["schema_version"] == 1
    assert report["command"] == "crossdb.propagate_deletions"
    assert (report["applied"], report["failed"], report["error"]) == (6, 0, None)
    assert all_pending() == []


def test_the_propagation_task_refuses_a_bad_older_than(app):
    with pytest.raises(ValueError, match=r"older_than: 'nan' is not a number of seconds"):
        propagate_deletions.apply(kwargs={"older_than": "nan"}).get()


def documented_beat_schedule() -> dict:
    return documented_celery_namespace()["app"].conf.beat_schedule


@pytest.fixture
def prefork_worker(tmp_path, broker):
    """``celery -A <the docs' celery.py> worker --pool prefork --concurrency 4``."""
    (tmp_path / "docs_celery_app.py").write_text(documented_celery_module())
    env = {
        **os.environ,
        "CELERY_BROKER_URL": WORKER_BROKER,
        "CELERY_RESULT_BACKEND": WORKER_BROKER,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "CROSSDB_TEST_USE_TEST_DATABASES": "1",
        "CROSSDB_TEST_CELERY_KEY_PREFIX": KEY_PREFIX,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
    }
    client = Celery("client", broker=WORKER_BROKER, backend=WORKER_BROKER, set_as_current=False)
    client.conf.broker_transport_options = TRANSPORT_OPTIONS
    client.control.purge()
    name = f"docs-{uuid.uuid4().hex[:8]}@localhost"
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [*WORKER, "-n", name],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while not client.control.ping(destination=[name], timeout=1):
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
        yield client
    finally:
        worker.terminate()  # warm shutdown
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()
        client.close()


@pytest.mark.usefixtures("crashed_deletion")
def test_the_documented_beat_schedule_on_a_prefork_worker(prefork_worker, tmp_path):
    """docs/scheduling.rst's celery.py and beat entries, sent as beat sends them."""
    schedule = documented_beat_schedule()
    assert set(schedule) == {"crossdb-propagate", "crossdb-verify"}
    hour_ago = timezone.now() - timedelta(hours=1)
    PendingPropagation.objects.update(created_at=hour_ago)  # older than older_than=300
    employees_with_orphans(5, [900001])

    def send(name):
        entry = schedule[name]
        return prefork_worker.send_task(
            entry["task"], args=entry.get("args", ()), kwargs=entry.get("kwargs", {})
        )

    log = tmp_path / "worker.log"
    report = send("crossdb-propagate").get(timeout=120)
    assert (report["schema_version"], report["applied"], report["failed"]) == (1, 6, 0)
    assert report["error"] is None, report
    assert all_pending() == []
    assert not Membership.objects.exists()

    callback_id = send("crossdb-verify").get(timeout=120)
    assert prefork_worker.AsyncResult(callback_id).get(timeout=300) == 1, log.read_text()
    assert "Never call result.get() within a task" not in log.read_text()
    assert "crossdb: 1 orphan reference(s)" in log.read_text()


def test_the_propagation_task_applies_captured_deletions(app):
    """Deletions the triggers captured (a raw DELETE) are applied by the beat task too."""
    from tests.test_capture import Scenario, all_queued, raw_delete

    scenario = Scenario("account")
    raw_delete(type(scenario.target), scenario.alias, [scenario.target.pk])
    scenario.assert_untouched()

    report = propagate_deletions.apply(kwargs={"older_than": 0}).get()

    assert (report["applied"], report["failed"], report["error"]) == (1, 0, None)
    scenario.assert_applied()
    assert all_queued() == []
