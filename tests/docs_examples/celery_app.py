"""docs/scheduling.rst's celery.py (the ``scheduling-celery`` block), run once per session."""

from __future__ import annotations

from functools import cache
from typing import Any

from tests.docs_examples.blocks import all_blocks


def documented_celery_module() -> str:
    [block] = [block for block in all_blocks() if block.name == "scheduling-celery"]
    return block.text


@cache
def documented_celery_namespace() -> dict[str, Any]:
    """
    The block's globals. Once only: each run would define its ``app.task`` again, and Celery
    shares tasks between apps (DuplicateTaskNameWarning). Celery("app") does not stay the
    current app.
    """
    from celery import _state

    namespace: dict[str, Any] = {"__name__": "docs_celery_app"}
    previous = _state.get_current_app()
    try:
        exec(documented_celery_module(), namespace)
    finally:
        _state._set_current_app(previous)
    return namespace
