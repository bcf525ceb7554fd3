"""Masking of what an audit row keeps: secrets never reach the trail.

A value is masked when its key names a secret (secret, password, token, credentials, api key,
private key, authorization, signature), and a string that is a URL with a password in it keeps
its URL with the password replaced. Masking recurses into mappings and lists. A masked value is
``"********"`` when it was set, ``""`` or ``None`` unchanged when it was empty, so a diff still
shows that a secret was set, changed or cleared without showing it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "********"

SECRET_KEY = re.compile(
    r"secret|passw(or)?d|pwd|token|credential|api[_-]?key|private[_-]?key|access[_-]?key"
    r"|^auth(orization)?$|signature",
    re.IGNORECASE,
)
#: Keys that name a secret but hold something about it (whether it changed, is set; its id).
ABOUT_A_SECRET = re.compile(r"^has_|_(changed|set|id|name|count)$", re.IGNORECASE)


def is_secret_key(key: Any) -> bool:
    name = str(key)
    return bool(SECRET_KEY.search(name)) and not ABOUT_A_SECRET.search(name)


def mask(value: Any) -> Any:
    """``value`` as JSON-ready data with every secret masked (see the module docstring)."""
    if isinstance(value, Mapping):
        return {str(k): (_masked(v) if is_secret_key(k) else mask(v)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [mask(v) for v in items]
    if isinstance(value, str):
        return mask_url(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def _masked(value: Any) -> Any:
    if value is None or value == "" or value == [] or value == {}:
        return value
    return MASK


def mask_url(text: str) -> str:
    """A URL with its password replaced by the mask; any other text unchanged."""
    if "://" not in text or "@" not in text:
        return text
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return text
    if not password:
        return text
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))
