"""Webhook endpoints as data: the secret encrypted at rest and bound to the URL's host, the
limits on what an endpoint may be, and key rotation."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.core.management import call_command

from queues import services
from queues.deletion import delete_queue
from workers.endpoints import create_endpoint, update_endpoint
from workers.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

SECRET = "whsec-do-not-leak"


@pytest.fixture
def crm() -> WebhookEndpoint:
    return create_endpoint(name="crm", url="https://crm.example.com/hooks/orders", secret=SECRET)


def test_the_secret_is_stored_encrypted(crm: WebhookEndpoint) -> None:
    stored = WebhookEndpoint.objects.values_list("secret_ciphertext", flat=True).get()
    assert SECRET not in stored
    assert WebhookEndpoint.objects.get().get_secret() == SECRET


def test_another_path_on_the_same_host_keeps_the_secret(crm: WebhookEndpoint) -> None:
    cleared = update_endpoint(crm, url="https://CRM.example.com/hooks/v2")
    assert not cleared
    assert WebhookEndpoint.objects.get().get_secret() == SECRET


def test_another_host_clears_the_secret_unless_a_new_one_comes_with_it(
    crm: WebhookEndpoint,
) -> None:
    assert update_endpoint(crm, url="https://listener.example.net/") is True
    assert not WebhookEndpoint.objects.get().has_secret

    update_endpoint(crm, secret="fresh")
    assert update_endpoint(crm, url="https://crm.example.com/", secret="newer") is False
    assert WebhookEndpoint.objects.get().get_secret() == "newer"


@pytest.mark.parametrize(
    ("fields", "error_key"),
    [
        ({"url": "ftp://crm.example.com/"}, "url"),
        ({"url": "https://u:p@crm.example.com/"}, "url"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": 31}, "timeout"),
        ({"name": "two words"}, "name"),
    ],
)
def test_an_invalid_endpoint_is_refused_and_nothing_is_saved(
    crm: WebhookEndpoint, fields: dict[str, Any], error_key: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        update_endpoint(crm, **fields)
    assert error_key in exc.value.message_dict
    stored = WebhookEndpoint.objects.get()
    assert (stored.name, stored.url, stored.timeout) == (
        "crm",
        "https://crm.example.com/hooks/orders",
        10,
    )


def test_rotation_re_encrypts_with_the_first_key(crm: WebhookEndpoint, settings: Any) -> None:
    old_keys = list(settings.QUAYMASTER_ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode()
    settings.QUAYMASTER_ENCRYPTION_KEYS = [new_key, *old_keys]
    out = StringIO()
    call_command("rotate_webhook_secrets", stdout=out)
    assert "Re-encrypted 1 webhook endpoint secret(s)" in out.getvalue()

    settings.QUAYMASTER_ENCRYPTION_KEYS = [new_key]  # the old key is gone
    assert WebhookEndpoint.objects.get().get_secret() == SECRET


def test_a_deleted_queue_leaves_its_endpoints_which_no_longer_take_its_messages(
    crm: WebhookEndpoint,
) -> None:
    orders = services.create_queue(name="orders", type="database")
    other = services.create_queue(name="other", type="database")
    update_endpoint(crm, queues=[orders, other])

    delete_queue(orders)

    crm.refresh_from_db()
    assert list(crm.queues.all()) == [other]
    assert crm.get_secret() == SECRET
