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


@pytest.fixture
def in_process_requests() -> Iterator[None]:
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
