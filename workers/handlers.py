"""Built-in handlers: ``send_email``, ``webhook`` and ``log``.

Whoever may publish to a queue writes these messages, so they choose only what is theirs to
choose: the recipients and text of an email (sent from ``DEFAULT_FROM_EMAIL``), the payload of a
webhook and which of the queue's endpoints gets it (URL, signing secret and timeout are the
endpoint's, set by admins; see ``workers.endpoints`` and ``workers.webhook_client``).

A message these handlers cannot use (a missing key, a key that is not the publisher's to set,
an endpoint the queue may not use) raises ``MalformedMessage``, and an endpoint whose host
resolves to a non-public address raises ``AddressRefused``: both are dead-lettered at once, since
retrying cannot fix them. A webhook that answers with anything but 2xx (or not in time) raises
``WebhookFailed`` and is retried with backoff.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email

from workers.context import Context
from workers.endpoints import deliver, endpoint_for
from workers.errors import MalformedMessage
from workers.registry import handler

#: Keys that would choose the sender: the platform does (DEFAULT_FROM_EMAIL).
SENDER_KEYS = ("from_email", "reply_to", "sender")
#: Keys of the old webhook message that chose the destination, the secret and the timeout.
WEBHOOK_SERVER_KEYS = ("url", "secret_name", "timeout")


def _required(message: dict[str, Any], key: str, kind: type | tuple[type, ...] = str) -> Any:
    value = message.get(key)
    if value is None or value == "" or not isinstance(value, kind):
        raise MalformedMessage(f"The message needs {key!r}.")
    return value


def _addresses(message: dict[str, Any], key: str, *, required: bool = False) -> list[str]:
    """``message[key]``: one address or a list of them, each a valid email address."""
    value = _required(message, key, (str, list)) if required else message.get(key)
    if value is None or value == [] or value == "":
        return []
    found = [value] if isinstance(value, str) else value
    if not isinstance(found, list):
        raise MalformedMessage(f"{key!r} must be an address or a list of addresses.")
    for address in found:
        try:
            if not isinstance(address, str):
                raise ValidationError("not a string")
            validate_email(address)
        except ValidationError:
            shown = repr(address)[:100] if isinstance(address, str) else type(address).__name__
            raise MalformedMessage(
                f"{key!r} must be an address or a list of addresses: {shown} is not an email "
                "address."
            ) from None
    return found


@handler("send_email")
def send_email(message: dict[str, Any], ctx: Context) -> None:
    """``{"handler": "send_email", "to": "a@x" | ["a@x", …], "subject", "body", "cc"?,
    "bcc"?}`` through Django's email backend, from ``DEFAULT_FROM_EMAIL``, to at most
    ``QUAYMASTER_EMAIL_MAX_RECIPIENTS`` addresses in all."""
    for key in SENDER_KEYS:
        if key in message:
            raise MalformedMessage(
                f"The message carries {key!r}: the sender is configured by the platform "
                "(DEFAULT_FROM_EMAIL); remove the key."
            )
    to = _addresses(message, "to", required=True)
    if not to:
        raise MalformedMessage("'to' must be an address or a list of addresses.")
    cc = _addresses(message, "cc")
    bcc = _addresses(message, "bcc")
    cap = int(getattr(settings, "QUAYMASTER_EMAIL_MAX_RECIPIENTS", 50))
    count = len(to) + len(cc) + len(bcc)
    if count > cap:
        raise MalformedMessage(
            f"The message has {count} recipients in to, cc and bcc; at most {cap} "
            "(QUAYMASTER_EMAIL_MAX_RECIPIENTS): send it as several messages."
        )
    subject = _required(message, "subject")
    if "\n" in subject or "\r" in subject:
        raise MalformedMessage("'subject' must be one line (no line breaks).")
    email = EmailMessage(
        subject=subject,
        body=_required(message, "body"),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
        cc=cc or None,
        bcc=bcc or None,
    )
    ctx.outbound.check(f"email {subject!r} to {', '.join(to + cc + bcc)}")
    email.send(fail_silently=False)
    ctx.log.info("Sent %r to %s", email.subject, ", ".join(to))
    ctx.ack()


@handler("webhook")
def webhook(message: dict[str, Any], ctx: Context) -> None:
    """``{"handler": "webhook", "endpoint"?: "<name>", "payload": …}``: POST the payload as
    JSON to the named webhook endpoint (left out: the queue's only enabled one), signed with
    the endpoint's secret when it has one."""
    for key in WEBHOOK_SERVER_KEYS:
        if key in message:
            raise MalformedMessage(
                f"The message carries {key!r}: a webhook's URL, secret and timeout belong to its "
                'endpoint, set by admins. Send {"endpoint": "<name>", "payload": {…}} instead.'
            )
    endpoint = endpoint_for(ctx.queue, message.get("endpoint"))
    ctx.outbound.check(f"POST to webhook endpoint {endpoint.name!r} ({endpoint.url})")
    answer = deliver(endpoint, message.get("payload", {}), message_id=ctx.message_id)
    ctx.log.info(
        "POST to endpoint %s at %s answered %s in %.0f ms",
        endpoint.name,
        answer.address,
        answer.status,
        answer.seconds * 1000,
    )
    ctx.ack()


@handler("log")
def log(message: dict[str, Any], ctx: Context) -> None:
    """Write the message to the lifecycle log and acknowledge it (a smoke test for a queue)."""
    ctx.log.info("%s", json.dumps(message, sort_keys=True, default=str))
    ctx.ack()
