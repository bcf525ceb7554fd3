"""Starting, previewing and cancelling replays: the one path for the API, the back-office and
``manage.py replay``. Starting and cancelling are audited (``replay.start``: who, which link,
which records, how many, the rate; ``replay.cancel``: how many were written)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.trail import record
from queues.dialects import dialect
from queues.models import QueueLink
from queues.models.replay import Replay, ReplayState
from queues.replay.errors import InvalidReplay, ReplayEnded, ReplayNotFound, ReplayTooLarge
from queues.replay.selection import Selection, max_records, newest_id

T = TypeVar("T")


@dataclass(frozen=True)
class Preview:
    link: QueueLink
    selection: Selection
    rate: int
    count: int
    last_id: int
    limit: int

    @property
    def seconds(self) -> float:
        """How long the replay takes at its rate (the relay's publishing aside)."""
        return self.count / self.rate


def max_rate() -> int:
    return int(settings.QUAYMASTER_REPLAY_MAX_RATE)


def parse_rate(raw: object) -> int:
    limit = max_rate()
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= limit:
        raise InvalidReplay({"rate": [f"Records per second: a whole number from 1 to {limit:,}."]})
    return raw


def find_link(raw: object) -> QueueLink:
    if isinstance(raw, QueueLink):
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    link = None
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 < raw < 2**63:
        link = QueueLink.objects.select_related("table", "queue").filter(pk=raw).first()
    if link is None:
        raise InvalidReplay({"link": ["No table link with this id."]})
    return link


def preview(link: object, selection: object, rate: object) -> Preview:
    """Check what a replay would be started with and count its records; raises
    ``InvalidReplay`` naming every refused part."""
    errors: dict[str, list[str]] = {}
    found_link = _checked(lambda: find_link(link), errors)
    found_selection = _checked(lambda: Selection.parse(selection), errors)
    found_rate = _checked(lambda: parse_rate(rate), errors)
    if found_link is not None:
        if not found_link.enabled:
            errors.setdefault("link", []).append("The link is disabled: enable it first.")
        elif not found_link.queue.enabled:
            errors.setdefault("link", []).append("The link's queue is disabled: enable it first.")
    if errors or found_link is None or found_selection is None or found_rate is None:
        raise InvalidReplay(errors)
    last_id = newest_id(found_link)
    limit = max_records()
    # Counted up to one past the limit: enough to refuse, and bounded on a huge table.
    count = found_selection.records(found_link, last_id)[: limit + 1].count()
    return Preview(found_link, found_selection, found_rate, count, last_id, limit)


def _checked(check: Callable[[], T], errors: dict[str, list[str]]) -> T | None:
    try:
        return check()
    except InvalidReplay as error:
        errors.update(error.errors)
        return None


def start(
    link: object,
    selection: object,
    rate: object,
    *,
    user: AbstractBaseUser | AnonymousUser | None = None,
    request: HttpRequest | None = None,
) -> Replay:
    """Create a running replay (a runner picks it up: the scheduler's tick, or
    ``manage.py replay``); refused with ``InvalidReplay`` or ``ReplayTooLarge``."""
    seen = preview(link, selection, rate)
    if seen.count > seen.limit:
        raise ReplayTooLarge(seen.count, seen.limit)
    if seen.count == 0:
        raise InvalidReplay({"selection": ["No record of the table matches: nothing to replay."]})
    owner = user if isinstance(user, User) else None
    with transaction.atomic():
        replay = Replay.objects.create(
            link=seen.link,
            queue_id=seen.link.queue_id,
            table_id=seen.link.table_id,
            handler=seen.link.handler,
            selection=seen.selection.as_json(),
            rate=seen.rate,
            last_id=seen.last_id,
            total=seen.count,
            created_by=owner,
        )
        record("replay.start", replay, details=describe(replay), request=request)
    return replay


def cancel(replay_id: int, *, request: HttpRequest | None = None) -> Replay:
    """Stop a running replay: the chunk in flight (if any) commits first, none starts after."""
    with transaction.atomic():
        replay = dialect().locked(Replay.objects.filter(pk=replay_id)).first()
        if replay is None:
            raise ReplayNotFound(f"No replay {replay_id}.")
        if replay.ended:
            raise ReplayEnded(f"Replay {replay_id} has already ended ({replay.state}).")
        replay.state = ReplayState.CANCELLED
        replay.reason = "Cancelled."
        replay.finished_at = timezone.now()
        replay.owner = ""
        replay.lease_expires_at = None
        replay.save(update_fields=["state", "reason", "finished_at", "owner", "lease_expires_at"])
        details = {**describe(replay), "written": replay.written}
        record("replay.cancel", replay, details=details, request=request)
    return replay


def describe(replay: Replay) -> dict[str, Any]:
    return {
        "replay_id": str(replay.replay_id),
        "link": replay.link_id,
        "table": replay.table.slug,
        "queue": replay.queue.name,
        "selection": replay.selection,
        "rate": replay.rate,
        "records": replay.total,
    }


def get(replay_id: int) -> Replay:
    replay = Replay.objects.select_related("table", "queue", "created_by").filter(pk=replay_id)
    found = replay.first()
    if found is None:
        raise ReplayNotFound(f"No replay {replay_id}.")
    return found
