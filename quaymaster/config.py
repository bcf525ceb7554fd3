"""Values read from the environment that need more than a one-line default.

Development keeps generated secrets under ``var/`` so that restarts keep sessions and
encrypted queue credentials readable; production refuses to start without them.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

_MAKERS = {
    "django": lambda: secrets.token_urlsafe(50),
    "fernet": lambda: Fernet.generate_key().decode(),
    "password": lambda: secrets.token_urlsafe(12),
}


def persistent_secret(path: Path, make: str) -> str:
    """Return the secret kept in ``path``, creating it first with the maker named ``make``."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = _MAKERS[make]()
    path.touch(mode=0o600)
    path.write_text(value + "\n")
    return value


def required_in_production(name: str, value: str | None, production: bool) -> None:
    if production and not value:
        raise ImproperlyConfigured(
            f"{name} must be set when QUAYMASTER_ENV=production (it is generated under var/ "
            "only in development)."
        )


def split_keys(raw: str) -> list[str]:
    """Encryption keys come as a comma-separated list, newest first (see README: rotation)."""
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    for key in keys:
        try:
            Fernet(key.encode())
        except ValueError as exc:
            raise ImproperlyConfigured(
                "QUAYMASTER_ENCRYPTION_KEYS holds a value that is not a Fernet key "
                "(32 url-safe base64-encoded bytes)."
            ) from exc
    return keys


def proxy_ssl_header(raw: str) -> tuple[str, str]:
    """``X-Forwarded-Proto=https`` (the value defaults to ``https``) as Django's
    ``SECURE_PROXY_SSL_HEADER``: ``("HTTP_X_FORWARDED_PROTO", "https")``."""
    name, _, value = raw.partition("=")
    name, value = name.strip(), value.strip() or "https"
    if not re.fullmatch(r"[A-Za-z0-9-]+", name):
        raise ImproperlyConfigured(
            "QUAYMASTER_PROXY_SSL_HEADER must be a header name and its value for HTTPS, "
            "e.g. X-Forwarded-Proto=https."
        )
    return "HTTP_" + name.upper().replace("-", "_"), value


def web_origins(values: list[str]) -> list[str]:
    """Origins as browsers send them: ``scheme://host[:port]``, no path (a trailing slash is
    dropped); anything else is refused at start rather than never matching."""
    origins = []
    for value in values:
        origin = value.strip().rstrip("/")
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
            raise ImproperlyConfigured(
                f"QUAYMASTER_WEB_ORIGIN holds {value!r}: give origins such as "
                "https://quaymaster.example (scheme, host and port only)."
            )
        origins.append(origin)
    return origins


def metrics_networks(values: list[str]) -> list[str]:
    """``QUAYMASTER_METRICS_ALLOW_NETWORKS`` as CIDRs (a bare address is its own network);
    anything else is refused at start rather than never matching."""
    networks = []
    for value in values:
        entry = value.strip()
        if not entry:
            continue
        try:
            networks.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            raise ImproperlyConfigured(
                f"QUAYMASTER_METRICS_ALLOW_NETWORKS holds {value!r}: give networks such as "
                "10.0.0.0/8 or addresses, comma-separated."
            ) from None
    return networks
