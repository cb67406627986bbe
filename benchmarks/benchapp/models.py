"""
The benchmark's four tables.

- ``Target`` (database ``default``) and ``Source`` (database ``source``),
  related by a ``CrossDBForeignKey``: the relation across databases.
- ``SameTarget`` and ``SameSource`` (both in database ``same``), related by an
  ordinary ``models.ForeignKey``: Django's own relation inside one database,
  the baseline.

Both pairs have the same columns, so each variant reads rows of the same width.
"""

from django.db import models

from crossdb.fields import CrossDBForeignKey
from crossdb.query import CrossDBManager


class Named(models.Model):
    name = models.CharField(max_length=40)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name


class Target(Named):
    id = models.AutoField(primary_key=True)


class Source(Named):
    user = CrossDBForeignKey(Target, models.CASCADE, related_name="sources")

    objects = CrossDBManager()


class SameTarget(Named):
    id = models.AutoField(primary_key=True)


class SameSource(Named):
    user = models.ForeignKey(SameTarget, models.CASCADE, related_name="sources")


# bench_verify.py: verify_links over large tables -------------------------------
#
# Narrow tables (the key columns only; ``id`` is the app's AutoField), filled with
# SQL by bench_verify.py, not the ORM. The sources are routed to 'source', the targets
# stay in 'default' (bench_verify.py adds the routes to CROSSDB_ROUTES before Django
# starts).
# Each source row references one distinct target key; 1% of them dangle.


class KeyOnly(models.Model):
    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk}"


class VerifyTarget(KeyOnly):
    """1,000,000 targets, the dense case."""


class VerifySource(KeyOnly):
    target = CrossDBForeignKey(VerifyTarget, models.DO_NOTHING, related_name="+")


class VerifyBigTarget(KeyOnly):
    """4,000,000 targets: memory growth from 1M to 4M references."""


class VerifyBigSource(KeyOnly):
    target = CrossDBForeignKey(VerifyBigTarget, models.DO_NOTHING, related_name="+")


class VerifySparseTarget(KeyOnly):
    """10,000,000 targets, referenced by 1,000,000 sources every 10th key: the sparse case."""


class VerifySparseSource(KeyOnly):
    target = CrossDBForeignKey(VerifySparseTarget, models.DO_NOTHING, related_name="+")


class VerifyTargetCopy(KeyOnly):
    """VerifyTarget's keys copied into the sources' database, for the anti-join baseline."""


# bench_incremental.py: verify_links --incremental after 1% of the references were written.


class IncrementalTarget(KeyOnly):
    """In 'default'; the multiples of 100 are missing."""


class IncrementalSource(KeyOnly):
    """In 'source': its inserts and key updates are logged by the capture_deletes triggers."""

    target = CrossDBForeignKey(
        IncrementalTarget, models.CASCADE, related_name="+", capture_deletes=True
    )


# bench_capture.py: deletions captured by triggers ------------------------------
#
# Two links with capture_deletes=True, one per direction, so that on the real
# topology a target table with triggers lives in PostgreSQL ('default') and one in
# MariaDB ('source'); settings.py routes them. Each captured target table
# has a twin with the same columns and no trigger: the same DELETE without capture.
# The triggers are installed by crossdb's post_migrate receiver (benchapp has no
# migrations), when ``migrate --run-syncdb`` runs on the target's database. Keys are
# DEFAULT_AUTO_FIELD's integers.


class CaptureTarget(Named):
    """In 'default'; deletions captured for ``CaptureRef.target``."""


class CaptureTwin(Named):
    """CaptureTarget's twin in 'default', without a trigger."""


class CaptureRef(Named):
    """In 'source'."""

    target = CrossDBForeignKey(
        CaptureTarget, models.SET_NULL, null=True, capture_deletes=True, related_name="+"
    )


class BackCaptureTarget(Named):
    """In 'source'; deletions captured for ``BackCaptureRef.target``."""


class BackCaptureTwin(Named):
    """BackCaptureTarget's twin in 'source', without a trigger."""


class BackCaptureRef(Named):
    """In 'default'."""

    target = CrossDBForeignKey(
        BackCaptureTarget, models.CASCADE, capture_deletes=True, related_name="+"
    )
