"""``ctx.lock``: advisory locks on PostgreSQL, ``Lock`` rows elsewhere; contended across
threads (each thread has its own database connection, as handler threads do)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection

from workers.errors import LockTimeout
from workers.locks import DistributedLock, lock_key
from workers.models import Lock


def in_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on a thread of its own (its own connection) and return or raise its result."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:
            result["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if "error" in result:
        raise result["error"]
    return result.get("value")


@pytest.fixture(params=["native", "rows"])
def flavour(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The database's own mechanism, and the Lock-row one forced (on PostgreSQL too)."""
    if request.param == "rows":
        monkeypatch.setattr(DistributedLock, "_advisory", property(lambda self: False))
    return request.param


def test_lock_keys_are_stable_signed_64_bit() -> None:
    assert lock_key("customer:42") == lock_key("customer:42")
    assert lock_key("customer:42") != lock_key("customer:43")
    assert -(2**63) <= lock_key("x") < 2**63


@pytest.mark.django_db(transaction=True)
def test_a_held_lock_makes_others_time_out_until_it_is_released(flavour: str) -> None:
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with DistributedLock("customer:42", ttl=30):
            holding.set()
            release.wait(20)

    holder = threading.Thread(target=lambda: in_thread(hold))
    holder.start()
    try:
        assert holding.wait(10)
        with pytest.raises(LockTimeout, match="customer:42"):
            in_thread(lambda: DistributedLock("customer:42", timeout=0.2).acquire())
        in_thread(lambda: DistributedLock("customer:43", timeout=0.2).__enter__().release())
    finally:
        release.set()
        holder.join(20)

    def take() -> bool:
        with DistributedLock("customer:42", timeout=5) as lock:
            return lock.acquired

    assert in_thread(take)
    if flavour == "rows":
        assert not Lock.objects.exists(), "released rows are deleted"


@pytest.mark.django_db(transaction=True)
def test_a_waiter_gets_the_lock_once_the_holder_releases_it(flavour: str) -> None:
    first = DistributedLock("report", ttl=30)
    first.acquire()
    got = threading.Event()

    def wait_then_take() -> None:
        with DistributedLock("report", timeout=20):
            got.set()

    waiter = threading.Thread(target=lambda: in_thread(wait_then_take))
    waiter.start()
    assert not got.wait(0.3), "the waiter took a held lock"
    first.release()
    waiter.join(20)
    assert got.is_set()


@pytest.mark.django_db(transaction=True)
def test_a_crashed_holder_does_not_block_forever(flavour: str) -> None:
    """PostgreSQL: the session ends with the connection. Rows: the ttl runs out."""

    def crash_holding() -> None:
        DistributedLock("nightly", ttl=0).acquire()  # never released; the thread's
        # connection is closed by in_thread, as a killed process's would be

    in_thread(crash_holding)
    assert in_thread(lambda: DistributedLock("nightly", timeout=1).__enter__().acquired)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_uses_advisory_locks() -> None:
    with DistributedLock("customer:7"), connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        assert cursor.fetchone() == (1,)
    assert not Lock.objects.exists()
