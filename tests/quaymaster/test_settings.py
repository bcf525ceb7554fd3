"""Settings come from the environment; each case loads them in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

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
