"""
``makemigrations`` writes the capture operations when a field's need for them changes.

Django 5.2 lets ``makemigrations`` and ``migrate`` name their autodetector
(``Command.autodetector``; check ``commands.E001`` wants both the same): the
crossdb app's own ``makemigrations`` and ``migrate`` commands name
``CaptureAutodetector``, which adds ``InstallCaptureTriggers`` /
``RemoveCaptureTriggers`` to the *source* app's migration for each link whose
``capture_deletes=True`` (with a propagated ``on_delete``), target or target
key changed between the two states.
"""

from __future__ import annotations

from typing import Any

from django.db.migrations.autodetector import MigrationAutodetector, OperationDependency

from crossdb.operations import InstallCaptureTriggers, RemoveCaptureTriggers

# (link, target label, target key) -> (app_label, model_name, field_name)
Needs = dict[tuple[str, str, str], tuple[str, str, str]]


def _target_key(field: Any, state: Any) -> str | None:
    to_field = field.remote_field.field_name
    if to_field:
        return str(to_field)
    model = field.remote_field.model
    label = model if isinstance(model, str) else model._meta.label_lower
    app_label, _, name = label.lower().rpartition(".")
    try:
        target = state.models[app_label, name]
    except KeyError:
        return None
    for field_name, target_field in target.fields.items():
        if target_field.primary_key:
            return str(field_name)
    return None


def capture_needs(state: Any) -> Needs:
    """The capture triggers ``state`` needs, by link."""
    from crossdb.deletion import PROPAGATED_POLICIES, policy_name
    from crossdb.fields import CrossDBForeignKey

    needs: Needs = {}
    for (app_label, model_name), model_state in state.models.items():
        for name, field in model_state.fields.items():
            if not isinstance(field, CrossDBForeignKey) or not field.capture_deletes:
                continue
            if policy_name(field.on_delete) not in PROPAGATED_POLICIES:
                continue
            target = field.remote_field.model
            target_label = target if isinstance(target, str) else target._meta.label
            if "." not in target_label:
                target_label = f"{app_label}.{target_label}"
            target_app, _, target_name = target_label.rpartition(".")
            target_state = state.models.get((target_app.lower(), target_name.lower()))
            if target_state is not None:
                target_label = f"{target_state.app_label}.{target_state.name}"
            key = _target_key(field, state)
            if key is None:
                continue
            link = f"{app_label}.{model_state.name}.{name}"
            needs[link, target_label, key] = (app_label, model_name, name)
    return needs


class CaptureAutodetector(MigrationAutodetector):
    def generate_altered_db_table(self) -> None:
        super().generate_altered_db_table()
        self.generate_capture_triggers()

    def generate_capture_triggers(self) -> None:
        old, new = capture_needs(self.from_state), capture_needs(self.to_state)
        for (link, target, key), (app_label, _model, _name) in sorted(old.items()):
            if (link, target, key) not in new:
                removal = RemoveCaptureTriggers(link=link, target=target, key=key)
                self.add_operation(app_label, removal, beginning=True)
        for (link, target, key), (app_label, model_name, name) in sorted(new.items()):
            if (link, target, key) in old:
                continue
            target_app, _, target_model = target.rpartition(".")
            dependencies = [
                OperationDependency(app_label, model_name, name, OperationDependency.Type.CREATE),
                OperationDependency(
                    target_app, target_model.lower(), None, OperationDependency.Type.CREATE
                ),
                OperationDependency(
                    "crossdb", "captureddeletion", None, OperationDependency.Type.CREATE
                ),
            ]
            operation = InstallCaptureTriggers(link=link, target=target, key=key)
            self.add_operation(app_label, operation, dependencies=dependencies)
