"""Writing the audit trail: ``record(action, target, before=…, after=…, details=…)``.

Call it where the change is made (the service layer), inside the change's transaction: the
row is written with the change and rolled back with it. Actions are dotted codes,
``<object>.<verb>``: "queue.create", "queue.purge", "dead_letter.send_back", "token.revoke".

Who and where come from ``request`` when it is given, else from the acting context
(``audit.context``: set by the middleware for web requests, by the API's token authentication
for token requests, by management commands), else "system" with the process's name.
``before``, ``after`` and ``details`` are masked (``audit.masking``): secrets never reach the
trail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import models
from django.http import HttpRequest

from audit import context, masking
from audit.models import AuditEvent

__all__ = ["AuditEvent", "record", "snapshot"]


def record(
    action: str,
    target: models.Model | None = None,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> AuditEvent:
    """Append one row to the trail and return it."""
    actor = context.from_request(request) if request is not None else context.current()
    object_type, object_id, object_label = describe(target)
    return AuditEvent.objects.create(
        actor_id=actor.user_id,
        actor_name=actor.username[:150],
        token_id=actor.token_id,
        token_name=actor.token_name[:200],
        remote_addr=actor.remote_addr,
        via=actor.via,
        action=action[:100],
        object_type=object_type,
        object_id=object_id,
        object_label=object_label,
        before=masking.mask(before) if before is not None else None,
        after=masking.mask(after) if after is not None else None,
        details=masking.mask(details) if details else {},
    )


def describe(target: models.Model | None) -> tuple[str, str, str]:
    """``(object type, object id, label)`` of a model instance: "queues.queue", "12", its
    ``str()``."""
    if target is None:
        return "", "", ""
    try:
        label = masking.mask_url(str(target))
    except Exception:  # a label is a courtesy: never the reason an action fails
        label = ""
    return target._meta.label_lower, str(target.pk if target.pk is not None else ""), label[:300]


def snapshot(instance: models.Model, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """An instance's field values as JSON-ready data, for ``before``/``after``: the named
    fields, or every concrete field (a foreign key by its id). Masking happens in ``record``."""
    names = list(fields) if fields is not None else None
    values: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        if names is not None and field.name not in names and field.attname not in names:
            continue
        key = field.name if names is None or field.name in names else field.attname
        values[key] = _jsonable(getattr(instance, field.attname))
    return values


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes | memoryview):
        return "<binary>"
    return str(value)
