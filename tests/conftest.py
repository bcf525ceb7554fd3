"""Suite-wide rules: tests that need PostgreSQL or a real engine skip with a reason when it is
not configured, and fail instead when QUAYMASTER_REQUIRE_SERVICES=1 (as in CI)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.conf import settings

from tests.services import missing_service

pytest_plugins = ["tests.fixtures.engines"]


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres") and settings.DATABASES["default"]["ENGINE"] != (
        "django.db.backends.postgresql"
    ):
        missing_service("PostgreSQL: DATABASE_URL does not point at a PostgreSQL server")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Real hashing costs a third of a second per user; tests create many users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """One test database per pytest process, so concurrent runs on one server never share."""
    from pytest_django.fixtures import _set_suffix_to_test_databases

    _set_suffix_to_test_databases(suffix=f"p{os.getpid()}")
