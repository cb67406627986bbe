"""
Checks of the ``CROSSDB_*`` settings (``crossdb.E030`` to ``crossdb.E035``).

A wrong alias or a negative batch size would otherwise surface at the first
query that needs it, in a request or a worker, as an error far from its cause.
``manage.py check`` (and every command that runs the checks) names it at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core import checks

from crossdb.conf import LAZY_LOAD_MODES

# Longer than this, a claim of a process that died would hold its records back for a year.
MAX_LEASE = 365 * 24 * 3600.0


def _error(setting: str, message: str, hint: str, id: str) -> checks.Error:
    return checks.Error(message, hint=hint, obj=f"settings.{setting}", id=id)


def _aliases() -> str:
    return ", ".join(map(repr, settings.DATABASES))


@checks.register()
def check_routes(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    routes = getattr(settings, "CROSSDB_ROUTES", {})
    if not isinstance(routes, dict):
        return [
            _error(
                "CROSSDB_ROUTES",
                f"CROSSDB_ROUTES must be a dict, not {type(routes).__name__}.",
                'Write it as {"app_label" or "app_label.ModelName": "alias"}.',
                "crossdb.E030",
            )
        ]
    return [
        _error(
            "CROSSDB_ROUTES",
            f"CROSSDB_ROUTES routes {key!r} to {alias!r}, which is not in DATABASES.",
            f"Use one of DATABASES' aliases: {_aliases()}.",
            "crossdb.E031",
        )
        for key, alias in routes.items()
        if not isinstance(alias, str) or alias not in settings.DATABASES
    ]


@checks.register()
def check_default_database(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    alias = getattr(settings, "CROSSDB_DEFAULT_DATABASE", "default")
    if isinstance(alias, str) and alias in settings.DATABASES:
        return []
    return [
        _error(
            "CROSSDB_DEFAULT_DATABASE",
            f"CROSSDB_DEFAULT_DATABASE is {alias!r}, which is not in DATABASES.",
            f"Use one of DATABASES' aliases: {_aliases()}, or remove the setting ('default').",
            "crossdb.E032",
        )
    ]


def _positive_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _lease(value: Any) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and math.isfinite(value) and 0 < value <= MAX_LEASE


def _delay(value: Any) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and math.isfinite(value) and 0 <= value <= MAX_LEASE


# setting: (is it valid?, what it must be, whether None is allowed)
NUMERIC: dict[str, tuple[Callable[[Any], bool], str, bool]] = {
    "CROSSDB_MAX_LOOKUP_KEYS": (_positive_integer, "a positive integer", False),
    "CROSSDB_PREFETCH_BATCH_SIZE": (_positive_integer, "None or a positive integer", True),
    "CROSSDB_CHECK_MAX_ROWS": (_positive_integer, "a positive integer", False),
    "CROSSDB_PROPAGATION_LEASE": (
        _lease,
        f"a positive number of seconds, at most {MAX_LEASE:.0f} (a year)",
        False,
    ),
    "CROSSDB_INCREMENTAL_RECHECK_DELAY": (
        _delay,
        f"a number of seconds from 0 to {MAX_LEASE:.0f} (a year)",
        False,
    ),
}


@checks.register()
def check_numbers(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    for setting, (valid, wanted, nullable) in NUMERIC.items():
        if not hasattr(settings, setting):
            continue
        value = getattr(settings, setting)
        if (value is None and nullable) or (value is not None and valid(value)):
            continue
        messages.append(
            _error(
                setting,
                f"{setting} must be {wanted}, not {value!r}.",
                f"Set {setting} to {wanted}, or remove it to use the default.",
                "crossdb.E033" if setting == "CROSSDB_PROPAGATION_LEASE" else "crossdb.E034",
            )
        )
    return messages


@checks.register()
def check_lazy_loads(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    mode = getattr(settings, "CROSSDB_LAZY_LOADS", "allow")
    if mode in LAZY_LOAD_MODES:
        return []
    return [
        _error(
            "CROSSDB_LAZY_LOADS",
            f"CROSSDB_LAZY_LOADS must be one of {', '.join(map(repr, LAZY_LOAD_MODES))}, "
            f"not {mode!r}.",
            'Use "warn" or "raise" to find loads that need a prefetch, "allow" in production.',
            "crossdb.E035",
        )
    ]
