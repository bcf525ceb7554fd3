"""Built-in handlers: ``send_email``, ``webhook`` and ``log``.

A message these handlers cannot use (a missing key, a bad URL, an unknown secret) raises
``MalformedMessage``: it is dead-lettered at once, since retrying cannot fix it. A webhook
that answers with anything but 2xx (or not in time) raises ``WebhookFailed`` and is retried
with backoff.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage

from workers.context import Context
from workers.errors import MalformedMessage, WebhookFailed
from workers.registry import handler

SIGNATURE_HEADER = "X-Quaymaster-Signature"
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 60.0


def _required(message: dict[str, Any], key: str, kind: type | tuple[type, ...] = str) -> Any:
    value = message.get(key)
    if value is None or value == "" or not isinstance(value, kind):
        raise MalformedMessage(f"The message needs {key!r}.")
    return value


@handler("send_email")
def send_email(message: dict[str, Any], ctx: Context) -> None:
    """``{"handler": "send_email", "to": "a@x" | ["a@x", …], "subject", "body",
    "from_email"?, "cc"?, "bcc"?, "reply_to"?}`` through Django's email backend."""
    to = _required(message, "to", (str, list))
    recipients = [to] if isinstance(to, str) else to
    if not recipients or not all(isinstance(r, str) and "@" in r for r in recipients):
        raise MalformedMessage("'to' must be an address or a list of addresses.")
    email = EmailMessage(
        subject=_required(message, "subject"),
        body=_required(message, "body"),
        from_email=message.get("from_email") or None,
        to=recipients,
        cc=message.get("cc") or None,
        bcc=message.get("bcc") or None,
        reply_to=message.get("reply_to") or None,
    )
    email.send(fail_silently=False)
    ctx.log.info("Sent %r to %s", email.subject, ", ".join(recipients))
    ctx.ack()


def sign(secret: str, body: bytes) -> str:
    """The ``X-Quaymaster-Signature`` value: ``sha256=<hex HMAC of the body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirected POST would become a GET (or be replayed elsewhere): treat it as a failure."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


@handler("webhook")
def webhook(message: dict[str, Any], ctx: Context) -> None:
    """``{"handler": "webhook", "url", "payload", "secret_name"?, "timeout"?}``: POST the
    payload as JSON, signed with the secret named ``secret_name`` in the
    ``QUAYMASTER_WEBHOOK_SECRETS`` setting (secrets never travel in messages)."""
    url = _required(message, "url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MalformedMessage(f"The webhook url must be http(s)://host/…, not {url!r}.")
    body = json.dumps(message.get("payload", {}), separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Quaymaster-Webhook/1",
        "X-Quaymaster-Message-Id": ctx.message_id,
    }
    secret_name = message.get("secret_name")
    if secret_name is not None:
        secrets: dict[str, str] = getattr(settings, "QUAYMASTER_WEBHOOK_SECRETS", {})
        if not isinstance(secret_name, str) or secret_name not in secrets:
            raise MalformedMessage(
                f"No webhook secret named {secret_name!r} in QUAYMASTER_WEBHOOK_SECRETS."
            )
        headers[SIGNATURE_HEADER] = sign(secrets[secret_name], body)
    timeout = message.get("timeout", DEFAULT_TIMEOUT)
    if not isinstance(timeout, int | float) or not 0 < timeout <= MAX_TIMEOUT:
        raise MalformedMessage(f"'timeout' must be a number of seconds up to {MAX_TIMEOUT:g}.")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise WebhookFailed(url, f"HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise WebhookFailed(url, f"no answer: {getattr(exc, 'reason', exc)}") from exc
    if not 200 <= status < 300:
        raise WebhookFailed(url, f"HTTP {status}")
    ctx.log.info("POST %s answered %s", url, status)
    ctx.ack()


@handler("log")
def log(message: dict[str, Any], ctx: Context) -> None:
    """Write the message to the lifecycle log and acknowledge it (a smoke test for a queue)."""
    ctx.log.info("%s", json.dumps(message, sort_keys=True, default=str))
    ctx.ack()
