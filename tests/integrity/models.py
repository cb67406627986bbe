"""
Every on_delete policy across databases.

``Account`` lives in ``default``; everything pointing at it lives in ``employee``
(CROSSDB_ROUTES routes these models one by one), where ordinary ForeignKeys
continue the cascades.
"""

from django.db import models
from model_utils.managers import InheritanceQuerySet

from crossdb import CrossDBForeignKey, CrossDBManager, CrossDBQuerySetMixin


class InheritanceCrossDBQuerySet(CrossDBQuerySetMixin, InheritanceQuerySet):
    """Ours combined with django-model-utils' InheritanceManager queryset."""


def fallback_account_id() -> int:
    return Account.objects.get(name="fallback").pk


class Account(models.Model):
    name = models.CharField(max_length=50, unique=True)

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    account = CrossDBForeignKey(Account, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=50, default="member")

    objects = CrossDBManager()
    combined = models.Manager.from_queryset(InheritanceCrossDBQuerySet)()

    def __str__(self) -> str:
        return f"membership {self.pk}"


class MembershipNote(models.Model):
    """An ordinary ForeignKey inside ``employee``: the cascade continues through it."""

    membership = models.ForeignKey(Membership, models.CASCADE, related_name="notes")
    text = models.CharField(max_length=50, default="")


class Ledger(models.Model):
    """RESTRICT: blocks the deletion unless a cascade deletes the ledger too."""

    account = CrossDBForeignKey(Account, models.RESTRICT, related_name="ledgers")
    membership = models.ForeignKey(Membership, models.CASCADE, null=True, blank=True)

    def __str__(self) -> str:
        return f"ledger {self.pk}"


class Guard(models.Model):
    account = CrossDBForeignKey(Account, models.PROTECT, related_name="guards")

    def __str__(self) -> str:
        return f"guard {self.pk}"


class Subscription(models.Model):
    account = CrossDBForeignKey(
        Account, models.SET_DEFAULT, default=-1, related_name="subscriptions"
    )


class Alert(models.Model):
    account = CrossDBForeignKey(Account, models.SET(fallback_account_id), related_name="alerts")


class Archive(models.Model):
    account = CrossDBForeignKey(Account, models.SET(-1), related_name="archives")


class Watch(models.Model):
    account = CrossDBForeignKey(Account, models.DO_NOTHING, related_name="watches")


class Shelf(models.Model):
    """Lives in ``asset``, SQLite in both topologies: SQLite's parameter limit applies."""

    label = models.CharField(max_length=50)


class Bin(models.Model):
    shelf = CrossDBForeignKey(Shelf, models.CASCADE, related_name="bins")


class Node(models.Model):
    """A cascade onto its own model, inside ``employee``: Django's rules, Django's cycles."""

    parent = CrossDBForeignKey("self", models.CASCADE, null=True, related_name="children")


class Left(models.Model):
    """Lives in ``default``; with ``Right`` (in ``employee``) a cycle of cascades."""

    right = CrossDBForeignKey("Right", models.CASCADE, null=True, related_name="lefts")


class Right(models.Model):
    left = CrossDBForeignKey(Left, models.CASCADE, null=True, related_name="rights")


class Lock(models.Model):
    """An ordinary RESTRICT inside ``employee``, reached through Account -> Membership."""

    membership = models.ForeignKey(Membership, models.RESTRICT, related_name="locks")
    # When set, the same deletion of the account removes the lock too.
    account = CrossDBForeignKey(Account, models.CASCADE, null=True, related_name="locks")


class Seal(models.Model):
    """Lives in ``asset``: a cross-database RESTRICT on Membership, a CASCADE from Account."""

    membership = CrossDBForeignKey(Membership, models.RESTRICT, related_name="seals")
    account = CrossDBForeignKey(Account, models.CASCADE, null=True, related_name="seals")


class Site(models.Model):
    """Lives in ``default``: character keys that differ only by case and trailing space."""

    code = models.CharField(max_length=20, unique=True)


class Visit(models.Model):
    site = CrossDBForeignKey(Site, models.CASCADE, to_field="code", related_name="visits")


class Tag(models.Model):
    """Lives in ``asset`` (SQLite, which stores any character in a key)."""

    code = models.CharField(max_length=20, primary_key=True)


class Sticker(models.Model):
    """Lives in ``default``: PostgreSQL on the real topology, which cannot store NUL."""

    tag = CrossDBForeignKey(Tag, models.CASCADE, related_name="stickers")
    note = models.CharField(max_length=20, default="")


# Deletions captured by triggers (capture_deletes=True): a target in each database, so
# that the real topology puts one on PostgreSQL, MariaDB and SQLite.


class CapAccount(models.Model):
    """Lives in ``default`` (PostgreSQL on the real topology): integer keys."""

    name = models.CharField(max_length=50)


class CapMember(models.Model):
    """Lives in ``employee``."""

    account = CrossDBForeignKey(
        CapAccount, models.CASCADE, capture_deletes=True, related_name="members"
    )


class CapMemberNote(models.Model):
    """An ordinary ForeignKey inside ``employee``: the cascade continues through it."""

    member = models.ForeignKey(CapMember, models.CASCADE)


class CapBadge(models.Model):
    """Lives in ``employee`` (MariaDB on the real topology): character keys."""

    code = models.CharField(max_length=20, primary_key=True)


class CapHolder(models.Model):
    """Lives in ``default``."""

    badge = CrossDBForeignKey(
        CapBadge, models.SET_NULL, null=True, capture_deletes=True, related_name="holders"
    )


class CapToken(models.Model):
    """Lives in ``asset`` (SQLite in both topologies): UUID keys."""

    id = models.UUIDField(primary_key=True)


class CapUse(models.Model):
    """Lives in ``default``."""

    token = CrossDBForeignKey(CapToken, models.CASCADE, capture_deletes=True, related_name="uses")


class CapRoom(models.Model):
    """Lives in ``default`` (PostgreSQL on the real topology): integer keys."""

    name = models.CharField(max_length=50, default="")


class CapBooking(models.Model):
    """Lives in ``asset`` (SQLite in both topologies): a logged source on SQLite."""

    room = CrossDBForeignKey(
        CapRoom, models.SET_NULL, null=True, capture_deletes=True, related_name="bookings"
    )


class CapVisit(models.Model):
    """Lives in ``employee``: a logged source whose primary key is text, not an integer."""

    code = models.CharField(max_length=20, primary_key=True)
    room = CrossDBForeignKey(
        CapRoom, models.SET_NULL, null=True, capture_deletes=True, related_name="visits"
    )
