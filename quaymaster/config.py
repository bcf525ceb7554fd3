"""Values read from the environment that need more than a one-line default.

Development keeps generated secrets under ``var/`` so that restarts keep sessions and
encrypted queue credentials readable; production refuses to start without them.
"""

from __future__ import annotations

import secrets
from pathlib import Path

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
