"""The fuzz run calls the Django application in-process (WSGI), inside the test's transaction.

Django's WSGI handler closes "old" connections when a request starts and finishes; inside a
test's transaction that would close the connection the test data lives on, so, as Django's
own test client does, the run disconnects that receiver while it lasts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core import signals
from django.db import close_old_connections

from accounts.throttling import TokenRateThrottle


@pytest.fixture
def in_process_requests() -> Iterator[None]:
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _no_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs send far more than 6000 requests a minute, in-process; the limit would answer
    429 to much of the long run (tests/accounts/test_throttling.py is about the limit)."""
    monkeypatch.setattr(TokenRateThrottle, "get_rate", lambda self: None)
