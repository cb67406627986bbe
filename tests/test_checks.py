"""System checks of CrossDBForeignKey: each id, as a whole checks message."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks
from django.db import models
from django.test.utils import isolate_apps, override_settings

from crossdb import CrossDBForeignKey, CrossDBOneToOneField
from tests.integrity.models import Account

# Source models below use app_label "hr", routed to "employee"; Account lives in "default".


def crossdb_messages(field: Any) -> list[checks.CheckMessage]:
    return [message for message in field.check() if message.id.startswith("crossdb.")]


@isolate_apps("tests.hr", "tests.people")
def test_a_valid_field_has_no_messages():
    class Target(models.Model):
        class Meta:
            app_label = "people"

    class Source(models.Model):
        target = CrossDBForeignKey(Target, models.CASCADE)

        class Meta:
            app_label = "hr"

    assert Source._meta.get_field("target").check() == []


@isolate_apps("tests.hr")
def test_e001_unresolvable_target():
    class Source(models.Model):
        thing = CrossDBForeignKey("nowhere.Thing", models.CASCADE)

        class Meta:
            app_label = "hr"

    field = Source._meta.get_field("thing")
    assert crossdb_messages(field) == [
        checks.Error(
            "Field points to 'nowhere.Thing', which is not an installed model.",
            hint="Add the app of 'nowhere.Thing' to INSTALLED_APPS, or fix the "
            "'app_label.ModelName' reference.",
            obj=field,
            id="crossdb.E001",
        )
    ]


@isolate_apps("tests.hr")
def test_e002_set_null_without_null():
    class Source(models.Model):
        account = CrossDBForeignKey(Account, models.SET_NULL)

        class Meta:
            app_label = "hr"

    field = Source._meta.get_field("account")
    assert crossdb_messages(field) == [
        checks.Error(
            "Field specifies on_delete=SET_NULL, but cannot be null.",
            hint="Set null=True on the field, or change the on_delete rule.",
            obj=field,
            id="crossdb.E002",
        )
    ]


@isolate_apps("tests.hr")
def test_e003_set_default_without_default():
    class Source(models.Model):
        account = CrossDBForeignKey(Account, models.SET_DEFAULT)

        class Meta:
            app_label = "hr"

    field = Source._meta.get_field("account")
    assert crossdb_messages(field) == [
        checks.Error(
            "Field specifies on_delete=SET_DEFAULT, but has no default value.",
            hint="Set a default value, or change the on_delete rule.",
            obj=field,
            id="crossdb.E003",
        )
    ]


@isolate_apps("tests.hr")
def test_e004_on_delete_not_callable():
    class Source(models.Model):
        account = CrossDBForeignKey(Account, "CASCADE")

        class Meta:
            app_label = "hr"

    field = Source._meta.get_field("account")
    assert crossdb_messages(field) == [
        checks.Error(
            "on_delete must be callable, not 'CASCADE'.",
            hint="Use one of django.db.models' CASCADE, PROTECT, RESTRICT, SET_NULL, "
            "SET_DEFAULT, SET(...) or DO_NOTHING.",
            obj=field,
            id="crossdb.E004",
        )
    ]


@pytest.mark.skipif(not hasattr(models, "DB_CASCADE"), reason="DB_CASCADE is new in Django 6.1")
@isolate_apps("tests.hr")
def test_e005_database_level_on_delete():
    class Source(models.Model):
        account = CrossDBForeignKey(Account, models.DB_CASCADE)

        class Meta:
            app_label = "hr"

    field = Source._meta.get_field("account")
    assert crossdb_messages(field) == [
        checks.Error(
            "on_delete=DB_CASCADE asks the database to act on rows of another database, "
            "which no database can do.",
            hint="Use on_delete=CASCADE: crossdb emulates it across databases.",
            obj=field,
            id="crossdb.E005",
        )
    ]


@isolate_apps("tests.hr")
def test_e006_unknown_database_alias():
    class Source(models.Model):
        account = CrossDBForeignKey(Account, models.CASCADE, database="archive")

        class Meta:
            app_label = "hr"

    field = Source._meta.get_field("account")
    assert crossdb_messages(field) == [
        checks.Error(
            "database='archive' is not in DATABASES.",
            hint="Add 'archive' to DATABASES, or use one of: asset, default, employee.",
            obj=field,
            id="crossdb.E006",
        )
    ]


@isolate_apps("tests.hr")
def test_e007_target_not_migrated_where_it_is_read():
    class Source(models.Model):
        account = CrossDBForeignKey(Account, models.DO_NOTHING, database="asset")

        class Meta:
            app_label = "hr"

    field = Source._meta.get_field("account")
    assert crossdb_messages(field) == [
        checks.Error(
            "integrity.Account is read from database 'asset', but the database routers "
            "do not allow migrating it there, so its table will not exist in that database.",
            hint="Route integrity.Account to the database that holds it (its router's "
            "db_for_read), or pass database='<alias>' to the field.",
            obj=field,
            id="crossdb.E007",
        )
    ]


class NoCrossdbOnDefault:
    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label == "crossdb":
            return db != "default"
        return None


@isolate_apps("tests.hr")
def test_e008_propagation_table_not_allowed_on_the_target_database():
    class Source(models.Model):
        account = CrossDBForeignKey(Account, models.CASCADE)

        class Meta:
            app_label = "hr"

    field = Source._meta.get_field("account")
    routers = ["tests.test_checks.NoCrossdbOnDefault", "crossdb.routers.CrossDBRouter"]
    messages = _with_routers(routers, lambda: crossdb_messages(field))
    assert messages == [
        checks.Error(
            "on_delete=CASCADE records deletions of integrity.Account in database "
            "'default', but the routers do not allow migrating the crossdb app there.",
            hint="Let your router's allow_migrate() return True for app_label 'crossdb' on "
            "'default', then run `manage.py migrate crossdb --database=default`.",
            obj=field,
            id="crossdb.E008",
        )
    ]


def _with_routers(paths: list[str], run: Any) -> Any:
    """Run with DATABASE_ROUTERS replaced; django.db.router caches its routers."""
    from django.db import router
    from django.utils.module_loading import import_string

    saved = router.routers
    router.routers = [import_string(path)() for path in paths]
    try:
        return run()
    finally:
        router.routers = saved


@isolate_apps("tests.people")
def test_w001_both_ends_in_one_database():
    class Source(models.Model):
        account = CrossDBForeignKey(Account, models.CASCADE)

        class Meta:
            app_label = "people"

    field = Source._meta.get_field("account")
    assert crossdb_messages(field) == [
        checks.Warning(
            "people.Source and integrity.Account are both in database 'default'.",
            hint="Use models.ForeignKey: inside one database it gives a real constraint, "
            "joins and on_delete in SQL.",
            obj=field,
            id="crossdb.W001",
        )
    ]


@isolate_apps("tests.hr")
def test_w002_no_index():
    class Source(models.Model):
        account = CrossDBForeignKey(Account, models.CASCADE, db_index=False)

        class Meta:
            app_label = "hr"

    field = Source._meta.get_field("account")
    assert crossdb_messages(field) == [
        checks.Warning(
            "Field has db_index=False: reverse lookups, deletions and verify_links will "
            "scan the whole table.",
            hint="Remove db_index=False, or index the column with Meta.indexes.",
            obj=field,
            id="crossdb.W002",
        )
    ]


@isolate_apps("tests.hr", "tests.people")
def test_one_to_one_is_not_warned_about_unique():
    class Target(models.Model):
        class Meta:
            app_label = "people"

    class Source(models.Model):
        target = CrossDBOneToOneField(Target, models.CASCADE)

        class Meta:
            app_label = "hr"

    assert Source._meta.get_field("target").check() == []


@isolate_apps("tests.hr")
def test_routes_are_read_from_settings_on_each_access():
    class Source(models.Model):
        account = CrossDBForeignKey(Account, models.DO_NOTHING)

        class Meta:
            app_label = "hr"

    field = Source._meta.get_field("account")
    assert crossdb_messages(field) == []
    with override_settings(CROSSDB_ROUTES={"hr": "employee", "integrity": "employee"}):
        assert [m.id for m in crossdb_messages(field)] == ["crossdb.W001"]


def CASCADE(collector, field, sub_objs, using):
    """A user's own on_delete that happens to be called CASCADE: not Django's."""


@isolate_apps("tests.hr")
@pytest.mark.parametrize("policy", [CASCADE, lambda *args: None], ids=["named-CASCADE", "lambda"])
def test_e010_a_callable_that_is_not_djangos_policy(policy):
    class Source(models.Model):
        account = CrossDBForeignKey(Account, policy)

        class Meta:
            app_label = "hr"

    field = Source._meta.get_field("account")
    assert crossdb_messages(field) == [
        checks.Error(
            f"on_delete={policy!r} is not one of Django's policies, so crossdb cannot emulate "
            f"it across databases.",
            hint="Use one of django.db.models' CASCADE, PROTECT, RESTRICT, SET_NULL, "
            "SET_DEFAULT, SET(...) or DO_NOTHING; to react to deletions in your own way, "
            "use DO_NOTHING with a pre_delete or post_delete signal receiver.",
            obj=field,
            id="crossdb.E010",
        )
    ]


@pytest.mark.parametrize(
    ("policy", "name"),
    [
        (models.CASCADE, "CASCADE"),
        (models.PROTECT, "PROTECT"),
        (models.RESTRICT, "RESTRICT"),
        (models.SET_NULL, "SET_NULL"),
        (models.SET_DEFAULT, "SET_DEFAULT"),
        (models.DO_NOTHING, "DO_NOTHING"),
        (models.SET(0), "SET"),
        (models.SET(lambda: 0), "SET"),
        (CASCADE, None),
    ],
)
def test_policies_are_told_apart_by_identity_not_name(policy, name):
    from crossdb.deletion import policy_name

    assert policy_name(policy) == name


# W020: a Django relation whose ends the routers put in different databases --------------


@isolate_apps("tests.hr", "tests.people")
def test_w020_plain_relations_across_databases():
    from django.contrib.auth.models import Group, User

    from crossdb.checks_relations import check_model_relations

    class Local(models.Model):
        class Meta:
            app_label = "hr"

    class Source(models.Model):
        user = models.ForeignKey(User, models.CASCADE, db_constraint=False)
        account = models.OneToOneField(Account, models.CASCADE, db_constraint=False)
        groups = models.ManyToManyField(Group)
        local = models.ForeignKey(Local, models.CASCADE)
        linked = CrossDBForeignKey(User, models.CASCADE, related_name="+")

        class Meta:
            app_label = "hr"

    def w020(name: str, kind: str, target: str, hint: str) -> checks.Warning:
        return checks.Warning(
            f"{kind} hr.Source.{name} points to {target}, but the routers put hr.Source in "
            f"database 'employee' and {target} in 'default': Django cannot follow it across "
            f"databases.",
            hint=hint,
            obj=Source._meta.get_field(name),
            id="crossdb.W020",
        )

    assert check_model_relations(Source) == [
        w020(
            "user",
            "ForeignKey",
            "auth.User",
            "Use crossdb.CrossDBForeignKey, which reads the target from its own database.",
        ),
        w020(
            "account",
            "OneToOneField",
            "integrity.Account",
            "Use crossdb.CrossDBOneToOneField, which reads the target from its own database.",
        ),
        w020(
            "groups",
            "ManyToManyField",
            "auth.Group",
            "Replace it with a through model in the source's database holding a "
            "crossdb.CrossDBForeignKey to each model in another database.",
        ),
    ]
    assert check_model_relations(Local) == []


@isolate_apps("tests.hr")
def test_w020_none_when_both_ends_share_a_database():
    from django.contrib.auth.models import User

    from crossdb.checks_relations import check_model_relations

    class Source(models.Model):
        user = models.ForeignKey(User, models.CASCADE)

        class Meta:
            app_label = "hr"

    with override_settings(CROSSDB_ROUTES={}):
        assert check_model_relations(Source) == []


def test_w020_none_in_the_test_apps():
    from crossdb.checks_relations import check_relations

    assert check_relations() == []
