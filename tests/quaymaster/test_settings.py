"""Settings come from the environment; each case loads them in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, django
from django.conf import settings
django.setup()
db = settings.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"], "name": str(db["NAME"]), "debug": settings.DEBUG,
    "secret_key": settings.SECRET_KEY, "allowed_hosts": settings.ALLOWED_HOSTS,
    "keys": settings.QUAYMASTER_ENCRYPTION_KEYS, "celery": settings.CELERY_BROKER_URL,
    "kafka": settings.KAFKA_BOOTSTRAP_SERVERS,
    "hsts": settings.SECURE_HSTS_SECONDS,
    "hsts_subdomains": settings.SECURE_HSTS_INCLUDE_SUBDOMAINS,
    "ssl_redirect": settings.SECURE_SSL_REDIRECT,
    "redirect_exempt": settings.SECURE_REDIRECT_EXEMPT,
    "proxy_ssl_header": settings.SECURE_PROXY_SSL_HEADER,
    "web_origin": settings.QUAYMASTER_WEB_ORIGIN,
    "streams_same_host": settings.QUAYMASTER_STREAMS_SAME_HOST,
}))
"""

CLEARED = (
    "DATABASE_URL",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "QUAYMASTER_ENCRYPTION_KEYS",
    "QUAYMASTER_ENV",
    "CELERY_BROKER_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_SSL_REDIRECT",
    "QUAYMASTER_PROXY_SSL_HEADER",
    "QUAYMASTER_WEB_ORIGIN",
)


def load_settings(var_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in CLEARED}
    clean.update(
        {"QUAYMASTER_VAR_DIR": str(var_dir), "DJANGO_SETTINGS_MODULE": "quaymaster.settings"}
    )
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True
    )


def settings_of(var_dir: Path, **env: str) -> dict[str, object]:
    result = load_settings(var_dir, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_development_defaults_to_sqlite_under_var_and_keeps_generated_secrets(tmp_path: Path):
    first = settings_of(tmp_path)
    assert first["engine"] == "django.db.backends.sqlite3"
    assert first["name"] == str(tmp_path / "quaymaster.sqlite3")
    assert first["debug"] is True
    assert first["celery"] == "filesystem://"
    assert (tmp_path / "secret_key").read_text().strip() == first["secret_key"]

    second = settings_of(tmp_path)
    assert second["secret_key"] == first["secret_key"], "restart must keep sessions valid"
    assert second["keys"] == first["keys"], "restart must keep credentials readable"


def test_database_url_selects_postgresql(tmp_path: Path):
    got = settings_of(tmp_path, DATABASE_URL="postgres://u:p@127.0.0.1:5/db")
    assert got["engine"] == "django.db.backends.postgresql"
    assert got["name"] == "db"


def test_every_variable_is_read(tmp_path: Path):
    key = Fernet.generate_key().decode()
    got = settings_of(
        tmp_path,
        SECRET_KEY="s" * 50,
        DEBUG="false",
        ALLOWED_HOSTS="a.example,b.example",
        QUAYMASTER_ENCRYPTION_KEYS=key,
        CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//",
        KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9092",
    )
    assert got["secret_key"] == "s" * 50
    assert got["debug"] is False
    assert got["allowed_hosts"] == ["a.example", "b.example"]
    assert got["keys"] == [key]
    assert got["celery"].startswith("amqp://")
    assert got["kafka"] == "127.0.0.1:9092"
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize("missing", ["SECRET_KEY", "QUAYMASTER_ENCRYPTION_KEYS"])
def test_production_refuses_to_start_without_its_secrets(tmp_path: Path, missing: str):
    env = {
        "QUAYMASTER_ENV": "production",
        "SECRET_KEY": "s" * 50,
        "QUAYMASTER_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "quaymaster.example",
    }
    del env[missing]
    result = load_settings(tmp_path, **env)
    assert result.returncode != 0
    assert f"{missing} must be set when QUAYMASTER_ENV=production" in result.stderr
    assert not (tmp_path / "secret_key").exists()


def test_production_runs_without_debug(tmp_path: Path):
    got = settings_of(
        tmp_path,
        QUAYMASTER_ENV="production",
        SECRET_KEY="s" * 50,
        QUAYMASTER_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="quaymaster.example",
    )
    assert got["debug"] is False
    assert got["allowed_hosts"] == ["quaymaster.example"]


def test_a_malformed_encryption_key_is_refused_with_the_reason(tmp_path: Path):
    result = load_settings(tmp_path, QUAYMASTER_ENCRYPTION_KEYS="not-a-key")
    assert result.returncode != 0
    assert "QUAYMASTER_ENCRYPTION_KEYS holds a value that is not a Fernet key" in result.stderr


def test_an_unknown_mode_is_refused(tmp_path: Path):
    result = load_settings(tmp_path, QUAYMASTER_ENV="staging")
    assert result.returncode != 0
    assert "QUAYMASTER_ENV must be 'development' or 'production'" in result.stderr


PRODUCTION = {
    "QUAYMASTER_ENV": "production",
    "SECRET_KEY": "s" * 50,
    "ALLOWED_HOSTS": "quaymaster.example",
}


def production(**env: str) -> dict[str, str]:
    return {**PRODUCTION, "QUAYMASTER_ENCRYPTION_KEYS": Fernet.generate_key().decode(), **env}


def test_production_sends_hsts_redirects_to_https_and_trusts_no_proxy_header(tmp_path: Path):
    got = settings_of(tmp_path, **production())
    assert got["hsts"] == 31_536_000
    assert got["hsts_subdomains"] is False
    assert got["ssl_redirect"] is True
    # Probes and the metrics scrape come over plain HTTP from inside.
    assert got["redirect_exempt"] == ["^healthz$", "^readyz$", "^metrics$"]
    assert got["proxy_ssl_header"] is None, "any client could claim HTTPS with the header"
    assert got["web_origin"] == []
    assert got["streams_same_host"] is False


def test_production_security_settings_come_from_the_environment(tmp_path: Path):
    got = settings_of(
        tmp_path,
        **production(
            SECURE_HSTS_SECONDS="600",
            SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
            SECURE_SSL_REDIRECT="false",
            QUAYMASTER_PROXY_SSL_HEADER="X-Forwarded-Proto=https",
            QUAYMASTER_WEB_ORIGIN="https://quaymaster.example/,https://ops.example:8443",
        ),
    )
    assert (got["hsts"], got["hsts_subdomains"], got["ssl_redirect"]) == (600, True, False)
    assert got["proxy_ssl_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert got["web_origin"] == ["https://quaymaster.example", "https://ops.example:8443"]


def test_development_keeps_plain_http_and_the_same_host_streams_rule(tmp_path: Path):
    got = settings_of(tmp_path)
    assert (got["hsts"], got["ssl_redirect"], got["proxy_ssl_header"]) == (0, False, None)
    assert got["streams_same_host"] is True
    configured = settings_of(tmp_path, QUAYMASTER_WEB_ORIGIN="http://127.0.0.1:8000")
    assert configured["streams_same_host"] is False


def test_production_refuses_to_start_with_debug_on(tmp_path: Path):
    result = load_settings(tmp_path, **production(DEBUG="true"))
    assert result.returncode != 0
    assert "DEBUG must be off when QUAYMASTER_ENV=production" in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("QUAYMASTER_PROXY_SSL_HEADER", "X Forwarded: https", "QUAYMASTER_PROXY_SSL_HEADER must"),
        ("QUAYMASTER_WEB_ORIGIN", "quaymaster.example", "QUAYMASTER_WEB_ORIGIN holds"),
        ("QUAYMASTER_WEB_ORIGIN", "https://quaymaster.example/app", "QUAYMASTER_WEB_ORIGIN holds"),
    ],
)
def test_a_malformed_proxy_header_or_web_origin_is_refused(
    tmp_path: Path, name: str, value: str, message: str
):
    result = load_settings(tmp_path, **{name: value})
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.django_db
def test_the_ssl_redirect_spares_healthz_and_hsts_is_sent(settings: Any):
    """The production values at work (Django's SecurityMiddleware reads them per client)."""
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    settings.SECURE_HSTS_SECONDS = 31_536_000
    client = Client()
    assert client.get("/healthz").status_code == 200
    redirected = client.get("/login/")
    assert redirected.status_code == 301
    assert redirected["Location"].startswith("https://")
    secure = client.get("/login/", secure=True)
    assert secure["Strict-Transport-Security"] == "max-age=31536000"
