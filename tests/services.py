"""How tests find the real services that `platform/services up` started."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def services_required() -> bool:
    return os.environ.get("QUAYMASTER_REQUIRE_SERVICES") == "1"


def missing_service(reason: str) -> NoReturn:
    """Skip the test, or fail it when every service is required (CI)."""
    if services_required():
        pytest.fail(f"required service missing: {reason}", pytrace=False)
    pytest.skip(reason)


def service_env(name: str) -> str:
    """The value of a variable printed by `platform/services env`, or skip/fail without it."""
    value = os.environ.get(name, "")
    if not value:
        missing_service(f'{name} is not set (run: eval "$(platform/services env)")')
    return value
