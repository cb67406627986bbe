"""The admin's delete confirmation and delete action with cross-database dependents."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from crossdb.models import PendingPropagation
from tests.integrity.models import Account, Guard, Membership, MembershipNote

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


@pytest.fixture
def admin_client(client):
    admin = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(admin)
    return client


@pytest.fixture
def account() -> Account:
    account = Account.objects.create(name="acme")
    membership = Membership.objects.create(account=account, role="owner")
    MembershipNote.objects.create(membership=membership, text="hello")
    return account


def url(account: Account) -> str:
    return f"/admin/integrity/account/{account.pk}/delete/"


def test_confirmation_lists_cross_database_objects_and_deletes_nothing(admin_client, account):
    response = admin_client.get(url(account))

    assert response.status_code == 200
    summary = dict(response.context["model_count"])
    assert summary == {"accounts": 1, "memberships": 1, "membership notes": 1}
    assert f"membership {Membership.objects.get().pk}" in response.content.decode()
    assert Membership.objects.count() == 1
    assert MembershipNote.objects.count() == 1
    assert not PendingPropagation.objects.using("default").exists()


def test_confirmation_shows_protecting_objects(admin_client, account):
    guard = Guard.objects.create(account=account)

    response = admin_client.get(url(account))

    assert response.status_code == 200
    assert response.context["protected"] == [f"Guard: guard {guard.pk}"]


def test_delete_action_cascades_across_databases(admin_client, account):
    response = admin_client.post(url(account), {"post": "yes"})

    assert response.status_code == 302
    assert not Account.objects.exists()
    assert not Membership.objects.exists()
    assert not MembershipNote.objects.exists()
    assert not PendingPropagation.objects.using("default").exists()
