"""
Keys match exactly, whatever a column's collation or json_each()'s handling of odd characters.

On the real topology ``hr.Order`` (``code``, ``slug_target``) and ``hr.Visit`` live in MariaDB
under utf8mb4_unicode_ci, where ``'x1'``, ``'X1'`` and ``'x1 '`` compare equal; their targets
are in PostgreSQL (deterministic) and SQLite (BINARY), where they are three keys. ``inventory.Site``
is in SQLite on both topologies, so its keys are probed through ``json_each()``.
"""

from __future__ import annotations

import json

import pytest
from django.core import checks
from django.db import connections, models
from django.db.models import Prefetch
from django.test.utils import isolate_apps

from crossdb import CrossDBForeignKey
from crossdb.checks import key_collation_warning
from crossdb.collations import Collation, column_collation
from crossdb.verification import Partition, Verifier, merge_reports, select_links
from tests.helpers import run_command, without_envelope
from tests.hr.models import Order, Visit
from tests.integrity.models import Visit as IntegrityVisit
from tests.inventory.models import Site
from tests.people.models import CodeTarget

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

# Equal under MariaDB's utf8mb4_unicode_ci (case-insensitive, PAD SPACE), three keys elsewhere.
ALIKE = ["x1", "X1", "x1 "]
NUL_KEY = "k\x00ey"


def verify(*labels: str, **options):
    result = run_command("verify_links", *labels, format="json", **options)
    return result, json.loads(result.stdout) if result.stdout.strip().startswith("{") else None


def orders_of_alike_keys() -> None:
    """Targets ``x1`` and ``y``; seven orders whose primary key order mixes the keys."""
    CodeTarget.objects.create(code="x1", name="kept")
    CodeTarget.objects.create(code="y", name="kept")
    keys = ["x1", "X1", "y", "x1 ", "x1", "X1", "y"]
    Order.objects.bulk_create(Order(code_id=key, note=f"#{i}") for i, key in enumerate(keys))


class TestCollatedKeys:
    @pytest.mark.parametrize("batch_size", [1, 2, 3, 4, 5, 6, 7, 50_000])
    def test_keys_equal_under_the_collation_are_each_checked(self, batch_size):
        orders_of_alike_keys()
        [link] = select_links(["hr.Order.code"])

        result = Verifier(link, batch_size=batch_size).run()

        assert (result.checked, result.orphans) == (7, 3)
        assert sorted(result.sample) == ["X1", "x1 "]

    @pytest.mark.parametrize("parts", [2, 3, 5])
    def test_partitions_merge_into_the_whole(self, parts):
        orders_of_alike_keys()
        whole = verify("hr.Order.code", sample=100)[1]
        documents = [
            verify("hr.Order.code", sample=100, partition=Partition(index, parts))[1]
            for index in range(parts)
        ]
        assert without_envelope(merge_reports(documents, sample=100)) == without_envelope(whole)
        assert whole["links"][0]["orphans"] == 3

    @pytest.mark.parametrize("mode", ["set-null", "delete"])
    def test_a_repair_changes_only_the_rows_holding_the_missing_key_exactly(self, mode):
        CodeTarget.objects.create(code="X1", name="kept")
        Order.objects.bulk_create(
            [Order(code_id="x1", note="orphan"), Order(code_id="X1", note="kept")]
        )
        [link] = select_links(["hr.Order.code"])
        verifier = Verifier(link, collect_limit=10)
        assert verifier.run().repairable_keys == ["x1"]

        assert verifier.repair(["x1"], mode) == 1

        remaining = {order.note: order.code_id for order in Order.objects.all()}
        assert remaining == (
            {"orphan": None, "kept": "X1"} if mode == "set-null" else {"kept": "X1"}
        )

    def test_fix_delete_keeps_rows_whose_target_exists(self):
        CodeTarget.objects.create(code="X1", name="kept")
        Order.objects.bulk_create(
            [Order(code_id="x1", note="orphan"), Order(code_id="X1", note="kept")]
        )
        result = run_command("verify_links", "hr.Order.code", fix="delete", interactive=False)
        assert result.exit_code == 0, result.stdout + result.stderr
        assert list(Order.objects.values_list("note", "code_id")) == [("kept", "X1")]


class TestKeysJSONCannotCarry:
    """json_each() cuts a text at its first NUL character: such keys travel as IN parameters."""

    def test_a_key_holding_nul_whose_target_exists_is_no_orphan(self):
        Site.objects.bulk_create([Site(code=NUL_KEY), Site(code="k")])
        Visit.objects.bulk_create([Visit(site_id=NUL_KEY), Visit(site_id="gone")])

        result, document = verify("hr.Visit")

        assert result.exit_code == 1
        assert (document["links"][0]["orphans"], document["links"][0]["sample"]) == (1, ["gone"])

    def test_fix_delete_leaves_a_row_whose_target_exists(self):
        Site.objects.create(code=NUL_KEY)
        Visit.objects.bulk_create([Visit(site_id=NUL_KEY), Visit(site_id="gone")])

        result = run_command("verify_links", "hr.Visit", fix="delete", interactive=False)

        assert result.exit_code == 0, result.stdout + result.stderr
        assert list(Visit.objects.values_list("site_id", flat=True)) == [NUL_KEY]

    def test_a_repair_asked_for_such_a_key_changes_nothing(self):
        Site.objects.create(code=NUL_KEY)
        Visit.objects.create(site_id=NUL_KEY)
        [link] = select_links(["hr.Visit.site"])
        assert Verifier(link).repair([NUL_KEY], "set-null") == 0
        assert Visit.objects.get().site_id == NUL_KEY

    def test_prefetch_finds_the_target(self):
        site = Site.objects.create(code=NUL_KEY)
        Site.objects.create(code="k")
        Visit.objects.create(site_id=NUL_KEY)
        [visit] = Visit.objects.prefetch_related(Prefetch("site"))
        assert visit.site == site and visit.site.code == NUL_KEY


def test_a_nul_key_cannot_exist_in_postgresql_and_is_reported():
    if connections["default"].vendor != "postgresql":
        pytest.skip("PostgreSQL refuses NUL in text; elsewhere the key is an ordinary one.")
    Order.objects.create(code_id=NUL_KEY)
    _, document = verify("hr.Order.code")
    assert document["links"][0]["sample"] == [NUL_KEY]


def w004(field, source: str, target: str) -> checks.Warning:
    label = f"{field.model._meta.label}.{field.name}"
    return checks.Warning(
        f"Key column {source}; its target column {target}.",
        hint=f"Lookups follow the column's collation (filter({field.name}='abc') may also match "
        f"'ABC' or 'abc '); crossdb's own operations compare keys exactly, and `manage.py "
        f"verify_links {label}` reports keys that match their target only under a collation. "
        f"Give both columns an exact collation: utf8mb4_nopad_bin (MariaDB), utf8mb4_0900_bin "
        f"(MySQL), a deterministic one (PostgreSQL), BINARY (SQLite).",
        obj=field,
        id="crossdb.W004",
    )


INEXACT = "which may find different keys equal (case, accents, trailing spaces)"
EXACT = "which compares keys exactly"


class TestCollationCheck:
    @staticmethod
    def messages(alias: str) -> list[checks.CheckMessage]:
        found = checks.run_checks(databases=[alias], tags=[checks.Tags.database])
        return [message for message in found if message.id == "crossdb.W004"]

    def test_keys_collated_unlike_their_targets(self):
        if connections["employee"].vendor != "mysql":
            assert self.messages("employee") == []  # SQLite's BINARY on both sides
            return
        ci = f"has collation 'utf8mb4_unicode_ci', {INEXACT}"
        assert self.messages("employee") == [
            w004(
                Order._meta.get_field("code"),
                f"hr_order.code_ref (database 'employee') {ci}",
                f"people_codetarget.code (database 'default') has collation 'default', {EXACT}",
            ),
            w004(
                Order._meta.get_field("slug_target"),
                f"hr_order.slug_target_id (database 'employee') {ci}",
                f"people_slugtarget.slug (database 'default') has collation 'default', {EXACT}",
            ),
            w004(
                Visit._meta.get_field("site"),
                f"hr_visit.site_id (database 'employee') {ci}",
                f"inventory_site.code (database 'asset') has collation 'BINARY', {EXACT}",
            ),
            w004(
                IntegrityVisit._meta.get_field("site"),
                f"integrity_visit.site_id (database 'employee') {ci}",
                f"integrity_site.code (database 'default') has collation 'default', {EXACT}",
            ),
        ]

    @isolate_apps("tests.hr")
    def test_a_declared_sqlite_collation(self):
        """SQLite's NOCASE against the BINARY of the target, in a table made for the test."""

        class Stop(models.Model):
            site = CrossDBForeignKey(Site, models.DO_NOTHING)

            class Meta:
                app_label = "hr"
                db_table = "hr_nocase_stop"

        field = Stop._meta.get_field("site")
        connection = connections["asset"]  # SQLite on both topologies
        with connection.cursor() as cursor:
            cursor.execute(
                'CREATE TABLE "hr_nocase_stop" ("id" integer PRIMARY KEY, '
                '"site_id" varchar(12) COLLATE NOCASE)'
            )
            try:
                warning = key_collation_warning(field, "asset", "asset")
            finally:
                cursor.execute("DROP TABLE hr_nocase_stop")
        assert warning == w004(
            field,
            f"hr_nocase_stop.site_id (database 'asset') has collation 'NOCASE', {INEXACT}",
            f"inventory_site.code (database 'asset') has collation 'BINARY', {EXACT}",
        )

    def test_mariadb_pad_space_is_not_exact(self):
        connection = connections["employee"]
        if connection.vendor != "mysql":
            pytest.skip("MariaDB's collations")
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE hr_padded (id integer PRIMARY KEY, "
                "padded varchar(9) COLLATE utf8mb4_bin, exact varchar(9) COLLATE utf8mb4_nopad_bin)"
            )
            try:
                found = [column_collation("employee", "hr_padded", c) for c in ("padded", "exact")]
            finally:
                cursor.execute("DROP TABLE hr_padded")
        assert found == [
            Collation("mysql", "utf8mb4_bin", exact=False),
            Collation("mysql", "utf8mb4_nopad_bin", exact=True),
        ]
