"""
Settings, read on every access so that ``override_settings`` works in tests.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# CROSSDB_LAZY_LOADS: what a lazy load across databases does.
LAZY_LOAD_MODES = ("allow", "warn", "raise")
SELECT_RELATED_MODES = ("prefetch", "raise")


class Settings:
    @property
    def ROUTES(self) -> dict[str, str]:
        """``{"app_label" or "app_label.Model": alias}`` for CrossDBRouter."""
        return dict(getattr(settings, "CROSSDB_ROUTES", {}))

    @property
    def DEFAULT_DATABASE(self) -> str:
        """Where CrossDBRouter puts models that CROSSDB_ROUTES does not list."""
        return str(getattr(settings, "CROSSDB_DEFAULT_DATABASE", "default"))

    @property
    def MAX_LOOKUP_KEYS(self) -> int:
        """The most keys a lookup across databases may turn into before it raises."""
        return int(getattr(settings, "CROSSDB_MAX_LOOKUP_KEYS", 100_000))

    @property
    def PREFETCH_BATCH_SIZE(self) -> int | None:
        """Keys per prefetch query; None means the backend's parameter limit."""
        value = getattr(settings, "CROSSDB_PREFETCH_BATCH_SIZE", None)
        return None if value is None else int(value)

    @property
    def CHECK_MAX_ROWS(self) -> int:
        """References per link that ``check --database`` reads before it stops."""
        return int(getattr(settings, "CROSSDB_CHECK_MAX_ROWS", 10_000))

    @property
    def PROPAGATION_LEASE(self) -> float:
        """Seconds a runner holds a pending propagation before another may take it over."""
        return float(getattr(settings, "CROSSDB_PROPAGATION_LEASE", 300))

    @property
    def LAZY_LOADS(self) -> str:
        """ "allow" (default), "warn" (LazyLoadWarning) or "raise" (LazyLoadForbidden)."""
        mode = getattr(settings, "CROSSDB_LAZY_LOADS", "allow")
        if mode not in LAZY_LOAD_MODES:
            raise ImproperlyConfigured(
                f"CROSSDB_LAZY_LOADS must be one of {', '.join(map(repr, LAZY_LOAD_MODES))}, "
                f"not {mode!r}."
            )
        return str(mode)

    @property
    def SELECT_RELATED(self) -> str:
        """``"prefetch"``: select_related() across databases loads in a second step;
        ``"raise"``: it raises CrossDatabaseJoinError, as a plain QuerySet does."""
        value = getattr(settings, "CROSSDB_SELECT_RELATED", "prefetch")
        if value not in SELECT_RELATED_MODES:
            raise ImproperlyConfigured(
                f"CROSSDB_SELECT_RELATED must be 'prefetch' or 'raise', not {value!r}."
            )
        return str(value)


crossdb_settings = Settings()


class CaptureSettings:
    """Settings of deletion capture (``capture_deletes=True``) and its queue."""

    @property
    def PENDING_WARN_AGE(self) -> float | None:
        """Seconds after which a deletion still unapplied makes check crossdb.W043 warn."""
        value = getattr(settings, "CROSSDB_PENDING_WARN_AGE", 3600)
        return None if value is None else float(value)

    @property
    def INCREMENTAL_RECHECK_DELAY(self) -> float:
        """
        Seconds after it was logged (the source database's clock) that a check by
        ``verify_links --incremental`` may forget a written reference: longer than
        the longest transactions writing references and deleting targets together,
        so that a deletion a check within the delay could not see has committed.
        """
        return float(getattr(settings, "CROSSDB_INCREMENTAL_RECHECK_DELAY", 60))


capture_settings = CaptureSettings()
