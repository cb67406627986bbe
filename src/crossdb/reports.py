"""
The JSON documents of the commands and tasks: one envelope, one schema version.

Every document a command prints with ``--format json`` (and every report a task
returns) is ``envelope(...)``: what ran, when, for how long, with which versions
of crossdb and Django, on which databases; and on failure an ``error`` object.
A consumer reads ``schema_version`` first; it changes when a key changes meaning
or goes away, not when one is added.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import django

SCHEMA_VERSION = 1


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Clock:
    """When a run started: ``Clock()`` at its start, then ``envelope(..., clock=...)``."""

    started_at: datetime = field(default_factory=_now)
    _start: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return time.monotonic() - self._start


def versions() -> dict[str, str]:
    import crossdb

    return {
        "crossdb": crossdb.__version__,
        "django": django.get_version(),
        "python": platform.python_version(),
    }


def error_object(message: str, exit_status: int, kind: str) -> dict[str, Any]:
    """``{"kind": "usage" | "unreachable" | ..., "message": ..., "exit_status": ...}``."""
    return {"kind": kind, "message": message, "exit_status": exit_status}


def envelope(
    command: str,
    clock: Clock,
    *,
    databases: list[str] | tuple[str, ...] = (),
    error: dict[str, Any] | None = None,
    **body: Any,
) -> dict[str, Any]:
    """
    The document of one run of ``command``: the envelope's keys first, then ``body``'s.

    ``databases`` are the aliases the run involved; ``error`` is None on success
    (see ``error_object()``).
    """
    finished_at = _now()
    return {
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "started_at": clock.started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "duration_s": round(clock.elapsed(), 3),
        "versions": versions(),
        "databases": list(databases),
        **body,
        "error": error,
    }


def dumps(document: dict[str, Any]) -> str:
    """The document as printed: indented, keys in their order, non-JSON values as strings."""
    return json.dumps(document, indent=2, default=str)
