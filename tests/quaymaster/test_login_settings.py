"""The login lockout's and the CSV import's settings come from the environment; each case
loads them in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "limit": settings.AXES_FAILURE_LIMIT,
    "cool_off": settings.AXES_COOLOFF_TIME.total_seconds(),
    "ip_key": settings.QUAYMASTER_CLIENT_IP_META_KEY,
    "import_max": settings.QUAYMASTER_IMPORT_MAX_BYTES,
}))
"""

NAMES = (
    "QUAYMASTER_LOGIN_FAILURE_LIMIT",
    "QUAYMASTER_LOGIN_COOLOFF_MINUTES",
    "QUAYMASTER_CLIENT_IP_HEADER",
    "QUAYMASTER_IMPORT_MAX_BYTES",
)


def load(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in NAMES and k != "DATABASE_URL"}
    clean.update(
        {"QUAYMASTER_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "quaymaster.settings"}
    )
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True
    )


def test_defaults_five_failures_fifteen_minutes_remote_addr_and_five_megabytes(tmp_path: Path):
    result = load(tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "limit": 5,
        "cool_off": 900.0,
        "ip_key": "",
        "import_max": 5 * 1024**2,
    }


def test_each_comes_from_its_variable(tmp_path: Path):
    result = load(
        tmp_path,
        QUAYMASTER_LOGIN_FAILURE_LIMIT="3",
        QUAYMASTER_LOGIN_COOLOFF_MINUTES="2.5",
        QUAYMASTER_CLIENT_IP_HEADER="X-Forwarded-For",
        QUAYMASTER_IMPORT_MAX_BYTES="1000000",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "limit": 3,
        "cool_off": 150.0,
        "ip_key": "HTTP_X_FORWARDED_FOR",
        "import_max": 1_000_000,
    }


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("QUAYMASTER_LOGIN_FAILURE_LIMIT", "0", "QUAYMASTER_LOGIN_FAILURE_LIMIT must be 1 or more"),
        ("QUAYMASTER_LOGIN_COOLOFF_MINUTES", "0", "QUAYMASTER_LOGIN_COOLOFF_MINUTES more than 0"),
        ("QUAYMASTER_CLIENT_IP_HEADER", "X-Forwarded-For: 1.2.3.4", "must be a header name"),
    ],
)
def test_a_value_that_would_disable_or_break_the_lockout_is_refused_at_start(
    tmp_path: Path, name: str, value: str, message: str
):
    result = load(tmp_path, **{name: value})
    assert result.returncode != 0
    assert message in result.stderr
