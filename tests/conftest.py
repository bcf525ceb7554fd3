"""Suite-wide rules: tests that need PostgreSQL or a real engine skip with a reason when it is
not configured, and fail instead when QUAYMASTER_REQUIRE_SERVICES=1 (as in CI)."""

from __future__ import annotations

import pytest
from django.conf import settings

from tests.services import missing_service


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres") and settings.DATABASES["default"]["ENGINE"] != (
        "django.db.backends.postgresql"
    ):
        missing_service("PostgreSQL: DATABASE_URL does not point at a PostgreSQL server")
