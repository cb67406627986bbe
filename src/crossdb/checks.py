"""
Project-wide checks. Per-field checks live on the field (``CrossDBForeignKey.check``).

``check_orphans`` is tagged ``database``: Django runs it only for
``manage.py check --database ALIAS``, so plain ``check`` never reads data.
"""

from __future__ import annotations

from typing import Any

from django.core import checks

from crossdb.conf import crossdb_settings
from crossdb.verification import Verifier, link_label, select_links


@checks.register(checks.Tags.database)
def check_orphans(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    max_rows = crossdb_settings.CHECK_MAX_ROWS
    for alias in databases or ():
        for field in select_links(database=alias):
            result = Verifier(field, max_rows=max_rows).run()
            if not result.orphans:
                continue
            extent = (
                f"in the first {result.checked} references checked (the check stops at "
                f"CROSSDB_CHECK_MAX_ROWS={max_rows})"
                if not result.complete
                else f"among {result.checked} references"
            )
            messages.append(
                checks.Warning(
                    f"{result.orphans} reference(s) {extent} point to "
                    f"{field.remote_field.model._meta.label} rows missing from database "
                    f"{result.target_database!r}; e.g. "
                    f"{', '.join(map(repr, result.sample))}.",
                    hint=f"Run `manage.py verify_links {link_label(field)}` for the full "
                    f"report, and add --fix set-null or --fix delete to repair.",
                    obj=field,
                    id="crossdb.W003",
                )
            )
    return messages
