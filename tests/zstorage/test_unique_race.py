"""Uniqueness is decided by the database's unique index, not by the friendly check: two
writers that insert the same value at the same moment get one winner, and the loser gets the
rule's message on the field. (The friendly check runs only once a write is refused.)"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from tests.zstorage.builders import contacts_table, make_field, make_rule, make_table
from zstorage import records
from zstorage.errors import BulkInvalid, RecordInvalid
from zstorage.models import Record, RecordChange, Table

TAKEN = "This email is already registered."


def hold_before_writing(monkeypatch: pytest.MonkeyPatch, parties: int) -> list[str]:
    """Make every writer wait, validated and about to write, until all writers got there:
    then they all write at once. Returns which write each one reached."""
    barrier = threading.Barrier(parties, timeout=20)
    reached: list[str] = []

    def held(name: str) -> Callable[..., Any]:
        write = getattr(records, name)

        def wait_then_write(*args: Any, **kwargs: Any) -> Any:
            reached.append(name)
            barrier.wait()
            return write(*args, **kwargs)

        return wait_then_write

    monkeypatch.setattr(records, "_insert", held("_insert"))
    monkeypatch.setattr(records, "_write_update", held("_write_update"))
    return reached


def race(writers: list[Callable[[], Record]]) -> list[Record | BaseException]:
    """Run each writer in its own thread (so on its own database connection)."""
    outcomes: list[Record | BaseException | None] = [None] * len(writers)

    def run(index: int) -> None:
        try:
            outcomes[index] = writers[index]()
        except BaseException as exc:  # reported to the test below
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(writers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert all(outcome is not None for outcome in outcomes)
    return outcomes  # type: ignore[return-value]


def winners_and_losers(
    outcomes: list[Record | BaseException],
) -> tuple[list[Record], list[BaseException]]:
    winners = [o for o in outcomes if isinstance(o, Record)]
    losers = [o for o in outcomes if not isinstance(o, Record)]
    return winners, losers


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_creates_racing_on_a_unique_value_have_one_winner(monkeypatch: pytest.MonkeyPatch):
    table = contacts_table()
    reached = hold_before_writing(monkeypatch, 2)

    def create(name: str) -> Callable[[], Record]:
        return lambda: records.create_record(table, {"name": name, "email": "race@example.com"})

    winners, losers = winners_and_losers(race([create("Ada"), create("Grace")]))

    assert reached == ["_insert", "_insert"]  # both were valid when they wrote: the index decided
    assert len(winners) == 1
    assert len(losers) == 1
    assert isinstance(losers[0], RecordInvalid), repr(losers[0])
    assert losers[0].errors == {"email": [TAKEN]}
    assert list(Record.objects.filter(table=table).values_list("pk", flat=True)) == [winners[0].pk]
    assert list(RecordChange.objects.values_list("record_id", flat=True)) == [winners[0].pk]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_updates_racing_to_the_same_unique_value_have_one_winner(
    monkeypatch: pytest.MonkeyPatch,
):
    table = contacts_table()
    ada, grace = records.bulk_create(table, [{"name": "Ada"}, {"name": "Grace"}])
    reached = hold_before_writing(monkeypatch, 2)

    def take_email(record: Record) -> Callable[[], Record]:
        return lambda: records.update_record(
            table, record.pk, {"email": "race@example.com"}, expected_version=1
        )

    winners, losers = winners_and_losers(race([take_email(ada), take_email(grace)]))

    assert reached == ["_write_update", "_write_update"]
    assert len(winners) == 1
    assert len(losers) == 1
    assert isinstance(losers[0], RecordInvalid), repr(losers[0])
    assert losers[0].errors == {"email": [TAKEN]}
    stored = {r.pk: (r.version, r.data.get("email")) for r in Record.objects.all()}
    loser_pk = grace.pk if winners[0].pk == ada.pk else ada.pk
    assert stored == {winners[0].pk: (2, "race@example.com"), loser_pk: (1, None)}


# Without threads, on both databases: skip the pre-check and the index still refuses. -------


def no_precheck(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "_check_unique", lambda *args: None)


@pytest.mark.django_db
def test_the_unique_index_refuses_what_the_precheck_let_through(monkeypatch: pytest.MonkeyPatch):
    table = contacts_table()
    no_precheck(monkeypatch)
    first = records.create_record(table, {"name": "Ada", "email": "ada@example.com"})

    with pytest.raises(RecordInvalid) as caught:
        records.create_record(table, {"name": "Grace", "email": "ada@example.com"})
    assert caught.value.errors == {"email": [TAKEN]}

    second = records.create_record(table, {"name": "Grace"})
    with pytest.raises(RecordInvalid) as caught:
        records.update_record(table, second.pk, {"email": "ada@example.com"})
    assert caught.value.errors == {"email": [TAKEN]}

    assert list(Record.objects.values_list("pk", flat=True)) == [first.pk, second.pk]
    assert Record.objects.get(pk=second.pk).data == {"name": "Grace"}


@pytest.mark.django_db
def test_the_index_refuses_a_clash_inside_one_bulk_write(monkeypatch: pytest.MonkeyPatch):
    table = contacts_table()
    no_precheck(monkeypatch)
    rows = [
        {"name": "Ada", "email": "ada@example.com"},
        {"name": "Ada", "email": "ada@example.com"},
        {"name": "Grace", "email": "grace@example.com"},
    ]
    with pytest.raises(BulkInvalid) as caught:
        records.bulk_create(table, rows)
    assert caught.value.errors == {1: {"email": [TAKEN]}}
    assert not Record.objects.exists()
    assert not RecordChange.objects.exists()


@pytest.mark.django_db
def test_the_unique_together_index_refuses_a_pair(monkeypatch: pytest.MonkeyPatch):
    table: Table = make_table()
    make_field(table, "first")
    make_field(table, "last")
    make_rule(table, "unique_together", "This person exists.", fields=["first", "last"])
    no_precheck(monkeypatch)
    records.create_record(table, {"first": "Ada", "last": "Lovelace"})
    records.create_record(table, {"first": "Ada", "last": "Byron"})

    with pytest.raises(RecordInvalid) as caught:
        records.create_record(table, {"first": "Ada", "last": "Lovelace"})
    assert caught.value.errors == {"first": ["This person exists."]}
    assert Record.objects.count() == 2
