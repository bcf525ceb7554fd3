"""Webhook endpoints: saving them (the back-office and the rotate command call these),
choosing the one a ``webhook`` message may use, and posting to one.

The secret follows the queues' rule for credentials: write-only, and bound to where it is sent.
Changing an endpoint's URL to another host clears its stored secret unless a new one comes
with the same change, so whoever may edit an endpoint but does not know its secret cannot point
it at a listener of theirs and collect bodies signed with it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from audit import trail
from queues import crypto
from queues.models import Queue
from workers.errors import MalformedMessage
from workers.models import WebhookEndpoint
from workers.webhook_client import Answer, post

SIGNATURE_HEADER = "X-Quaymaster-Signature"

WHERE = "an admin configures webhook endpoints on the back-office's Webhooks page"


def create_endpoint(
    *, secret: str = "", queues: Iterable[Queue] = (), **fields: Any
) -> WebhookEndpoint:
    """Validate (``full_clean``: raises ValidationError) and save an endpoint; ``secret`` is
    encrypted before it touches the database."""
    endpoint = WebhookEndpoint(**fields)
    endpoint.set_secret(secret)
    endpoint.full_clean()
    with transaction.atomic():
        endpoint.save()
        endpoint.queues.set(list(queues))
        trail.record("webhook.create", endpoint, after=audited(endpoint))
    return endpoint


def audited(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """What the audit trail keeps of an endpoint; the secret only as set or not."""
    return {
        **trail.snapshot(endpoint, ("name", "url", "timeout", "enabled")),
        "queues": sorted(q.name for q in endpoint.queues.all()),
        "secret": "set" if endpoint.has_secret else "",
    }


def delete_endpoint(endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint: messages that name it are dead-lettered from then on."""
    with transaction.atomic():
        trail.record("webhook.delete", endpoint, before=audited(endpoint))
        endpoint.delete()


def update_endpoint(
    endpoint: WebhookEndpoint,
    *,
    secret: str | None = None,
    queues: Iterable[Queue] | None = None,
    **fields: Any,
) -> bool:
    """Change fields; ``secret=None`` keeps the stored secret, ``""`` clears it, ``queues=None``
    keeps the queues. Returns whether a stored secret was cleared because the URL's host
    changed without a new secret. ValidationError (nothing saved) if the result is invalid."""
    old_host = endpoint.host
    before = audited(endpoint) if endpoint.pk else None
    for name, value in fields.items():
        setattr(endpoint, name, value)
    moved = endpoint.has_secret and endpoint.host != old_host
    cleared = moved and secret is None
    if secret is not None:
        endpoint.set_secret(secret)
    elif moved:
        endpoint.set_secret("")
    endpoint.full_clean()
    with transaction.atomic():
        endpoint.save()
        if queues is not None:
            endpoint.queues.set(list(queues))
        details = {"secret_changed": True} if secret is not None or cleared else None
        after = audited(endpoint)
        trail.record("webhook.change", endpoint, before=before, after=after, details=details)
    return cleared


def rotate_endpoint_secrets() -> int:
    """Re-encrypt every stored endpoint secret with the first QUAYMASTER_ENCRYPTION_KEYS key, in
    one transaction (all or nothing); the number re-encrypted."""
    count = 0
    with transaction.atomic():
        stored = WebhookEndpoint.objects.select_for_update().exclude(secret_ciphertext="")
        for endpoint in stored:
            endpoint.secret_ciphertext = crypto.rotate(endpoint.secret_ciphertext)
            endpoint.save(update_fields=["secret_ciphertext", "updated_at"])
            count += 1
        trail.record("webhook.rotate_secrets", details={"rotated": count})
    return count


def endpoint_for(queue: Queue, name: object) -> WebhookEndpoint:
    """The endpoint a message on ``queue`` names (``None``: the queue's only enabled one).
    MalformedMessage, saying what to do, if there is no such usable endpoint."""
    usable = WebhookEndpoint.objects.filter(enabled=True, queues=queue.pk) if queue.pk else None
    if name is None:
        names = list(usable.values_list("name", flat=True)[:6]) if usable is not None else []
        if len(names) == 1:
            return WebhookEndpoint.objects.get(name=names[0])
        if not names:
            raise MalformedMessage(
                f"The message names no 'endpoint' and queue {queue.name!r} has no enabled "
                f"webhook endpoint; {WHERE} and adds this queue to one."
            )
        listed = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
        raise MalformedMessage(
            f"The message must name its 'endpoint': queue {queue.name!r} may use several "
            f"webhook endpoints ({listed})."
        )
    if not isinstance(name, str) or not name:
        raise MalformedMessage("'endpoint' must be the name of a webhook endpoint.")
    endpoint = WebhookEndpoint.objects.filter(name=name).first()
    if endpoint is None:
        raise MalformedMessage(f"No webhook endpoint is named {name[:80]!r}; {WHERE}.")
    if not endpoint.enabled:
        raise MalformedMessage(
            f"Webhook endpoint {name!r} is disabled; {WHERE} and can enable it again."
        )
    if usable is None or not usable.filter(pk=endpoint.pk).exists():
        raise MalformedMessage(
            f"Webhook endpoint {name!r} does not take messages from queue {queue.name!r}; "
            f"{WHERE} and can add the queue to it."
        )
    return endpoint


def sign(secret: str, body: bytes) -> str:
    """The ``X-Quaymaster-Signature`` value: ``sha256=<hex HMAC of the body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(endpoint: WebhookEndpoint, payload: Any, *, message_id: str) -> Answer:
    """POST ``payload`` as JSON to the endpoint, signed with its secret when it has one, within
    its timeout (``workers.webhook_client.post``: AddressRefused, WebhookFailed)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Quaymaster-Webhook/1",
        "X-Quaymaster-Message-Id": message_id,
    }
    secret = endpoint.get_secret()
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    label = f"endpoint {endpoint.name} ({endpoint.host})"
    return post(endpoint.url, body, headers, timeout=float(endpoint.timeout), label=label)
