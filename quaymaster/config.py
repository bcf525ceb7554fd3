"""Values read from the environment that need more than a one-line default.

Development keeps generated secrets under ``var/`` so that restarts keep sessions and
encrypted queue credentials readable; production refuses to start without them.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

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


def _flag(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


#: ``QUAYMASTER_FILES_URL`` query options, passed to django-storages' ``S3Storage`` as they are
#: named there, and how each is read.
_S3_OPTIONS: dict[str, Callable[[str], Any]] = {
    "endpoint_url": str,
    "region_name": str,
    "addressing_style": str,
    "signature_version": str,
    "custom_domain": str,
    "default_acl": str,
    "querystring_auth": _flag,
    "querystring_expire": int,
    "file_overwrite": _flag,
}
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_FILES_HELP = (
    "give s3://bucket[/prefix]?endpoint_url=…&region_name=… (credentials from "
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or s3://key:secret@bucket/…), or leave it "
    "unset for the local folder (MEDIA_ROOT)."
)


def files_storage(raw: str) -> dict[str, Any]:
    """``QUAYMASTER_FILES_URL`` as ``STORAGES["default"]``, where ``ctx.files`` (and every file
    the platform writes) goes: unset, the local folder ``MEDIA_ROOT`` (the embedded default);
    ``s3://[key:secret@]bucket[/prefix][?option=value&…]``, an S3 bucket through
    django-storages, the options being ``S3Storage``'s (``_S3_OPTIONS``). Unlike S3Storage's
    own default, a name in use is not overwritten: the file gets a new name, as on the local
    folder (``file_overwrite=true`` overwrites). Anything else stops the start, naming the
    variable and never echoing a secret."""
    raw = raw.strip()
    if not raw:
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(f"QUAYMASTER_FILES_URL is not a URL: {_FILES_HELP}") from None
    if parts.scheme != "s3":
        raise ImproperlyConfigured(
            f"QUAYMASTER_FILES_URL must start with s3:// (not {parts.scheme or 'nothing'!r}): "
            + _FILES_HELP
        )
    bucket = parts.hostname or ""
    if port is not None or not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ImproperlyConfigured(
            "QUAYMASTER_FILES_URL must name an S3 bucket after s3:// (3 to 63 lower-case "
            "letters, digits, dots and hyphens): " + _FILES_HELP
        )
    options: dict[str, Any] = {
        "bucket_name": bucket,
        "location": parts.path.strip("/"),
        "file_overwrite": False,
    }
    if parts.username is not None or parts.password is not None:
        if not parts.username or not parts.password:
            raise ImproperlyConfigured(
                "QUAYMASTER_FILES_URL gives credentials as s3://key:secret@bucket/…, both of "
                "them, URL-encoded (or leave both out for AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY)."
            )
        options["access_key"] = unquote(parts.username)
        options["secret_key"] = unquote(parts.password)
    seen: set[str] = set()
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        read = _S3_OPTIONS.get(name)
        if read is None:
            raise ImproperlyConfigured(
                f"QUAYMASTER_FILES_URL has an unknown option {name!r}; known: "
                + ", ".join(sorted(_S3_OPTIONS))
                + "."
            )
        if name in seen:
            raise ImproperlyConfigured(f"QUAYMASTER_FILES_URL gives {name!r} twice.")
        seen.add(name)
        try:
            options[name] = read(value)
            if name == "endpoint_url" and urlsplit(value).scheme not in ("http", "https"):
                raise ValueError(value)
            if name == "addressing_style" and value not in ("auto", "path", "virtual"):
                raise ValueError(value)
        except ValueError:
            raise ImproperlyConfigured(
                f"QUAYMASTER_FILES_URL's {name} cannot be {value!r}: "
                + {
                    "endpoint_url": "give http(s)://host[:port].",
                    "addressing_style": "give auto, path or virtual.",
                    "querystring_expire": "give a number of seconds.",
                }.get(name, "give true or false.")
            ) from None
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}
