"""
Migration operations installing and removing a link's capture triggers.

They belong in the *source* app's migrations (the target may be ``auth.User``,
whose migrations are not yours) and act when migrating the database that holds
the target's table (the capture triggers) or the source's table (the triggers
logging written references, ``crossdb.capture_log_sql``); on every other
database they do nothing::

    from crossdb.operations import InstallCaptureTriggers

    operations = [
        InstallCaptureTriggers(link="hr.Employee.user", target="auth.User", key="id"),
    ]

``makemigrations`` writes them when a field's ``capture_deletes`` changes
(``crossdb.autodetector``). Both are reversible.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import router
from django.db.migrations.operations.base import Operation

from crossdb.capture import install, remove
from crossdb.capture_log_sql import LogSpec, install_log, remove_log, source_database
from crossdb.capture_sql import VENDORS, TriggerSpec, key_kind


class InstallCaptureTriggers(Operation):
    reversible = True
    # It introspects before it writes: `manage.py capture_ddl` prints the SQL instead.
    reduces_to_sql = False

    def __init__(self, link: str, target: str, key: str) -> None:
        self.link = link
        self.target = target
        self.key = key

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs = {"link": self.link, "target": self.target, "key": self.key}
        return type(self).__qualname__, [], kwargs

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass  # the field's capture_deletes=True is in the state already

    def describe(self) -> str:
        return f"Install the capture triggers of {self.link} on {self.target}"

    @property
    def migration_name_fragment(self) -> str:
        return f"capture_{self.link.replace('.', '_').lower()}"

    def _spec(self, state: Any) -> TriggerSpec:
        target = state.apps.get_model(self.target)
        field = target._meta.get_field(self.key)
        kind = key_kind(field)
        if kind is None:
            raise ValueError(
                f"{self.link}: {self.target}.{self.key} is not a key crossdb captures."
            )
        return TriggerSpec(self.link, target._meta.db_table, field.column, kind)

    def _acts_on(self, schema_editor: Any, state: Any) -> bool:
        """Whether ``schema_editor``'s database is the one holding the target's table."""
        from crossdb.capture import target_database

        return self._holds(schema_editor, state, target_database, self.target)

    def _logs_on(self, schema_editor: Any, state: Any) -> bool:
        """Whether ``schema_editor``'s database is the one holding the source's table."""
        return self._holds(schema_editor, state, source_database, self.link.rpartition(".")[0])

    def _holds(
        self, schema_editor: Any, state: Any, database: Callable[[Any], str], model: str
    ) -> bool:
        connection = schema_editor.connection
        if connection.vendor not in VENDORS:
            return False
        alias: str = connection.alias
        try:
            from crossdb.capture import field_for

            return database(field_for(self.link)) == alias
        except (LookupError, FieldDoesNotExist):
            # The field is gone from the code: fall back to where the model is migrated.
            return bool(router.allow_migrate_model(alias, state.apps.get_model(model)))

    def _log_spec(self, state: Any) -> LogSpec:
        model_label, _, name = self.link.rpartition(".")
        return LogSpec.of(state.apps.get_model(model_label)._meta.get_field(name), self.link)

    def _install(self, schema_editor: Any, state: Any) -> None:
        if self._acts_on(schema_editor, state):
            install(schema_editor.connection, self._spec(state))
        if self._logs_on(schema_editor, state):
            install_log(schema_editor.connection, self._log_spec(state))

    def _remove(self, schema_editor: Any, state: Any) -> None:
        if self._acts_on(schema_editor, state):
            remove(schema_editor.connection, self.link)
        if self._logs_on(schema_editor, state):
            remove_log(schema_editor.connection, self.link)

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        self._install(schema_editor, to_state)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        self._remove(schema_editor, from_state)


class RemoveCaptureTriggers(InstallCaptureTriggers):
    def describe(self) -> str:
        return f"Remove the capture triggers of {self.link} from {self.target}"

    @property
    def migration_name_fragment(self) -> str:
        return f"remove_capture_{self.link.replace('.', '_').lower()}"

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        self._remove(schema_editor, from_state)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        self._install(schema_editor, to_state)
