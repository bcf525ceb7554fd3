"""Group permissions on a table (``TableGrant``): the one place the back-office writes them.

ZStorage has no service for grants yet; keeping the write here, in one function, lets it move
there without touching the pages. A group with no permission left has no grant row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.contrib.auth.models import Group
from django.db import transaction

from audit import trail
from zstorage.models import Table, TableGrant
from zstorage.permissions import Action

GRANT_ACTIONS = [action.value for action in Action]


@dataclass(frozen=True)
class GrantRow:
    group: Group
    allowed: dict[str, bool]

    def input_name(self, action: str) -> str:
        return grant_input(self.group, action)


def grant_input(group: Group, action: str) -> str:
    return f"grant-{group.pk}-{action}"


def grant_rows(table: Table, groups: Iterable[Group]) -> list[GrantRow]:
    grants = {grant.group_id: grant for grant in table.grants.all()}
    rows = []
    for group in groups:
        grant = grants.get(group.pk)
        rows.append(
            GrantRow(
                group,
                {a: bool(grant and getattr(grant, f"can_{a}")) for a in GRANT_ACTIONS},
            )
        )
    return rows


@transaction.atomic
def save_grants(table: Table, groups: Iterable[Group], submitted: Mapping[str, str]) -> None:
    """Set each group's grant from the ticked boxes. Any permission implies view: a user who
    may change records must be able to open them."""
    groups = list(groups)
    before = _granted(table)
    for group in groups:
        allowed = {a: grant_input(group, a) in submitted for a in GRANT_ACTIONS}
        if not any(allowed.values()):
            TableGrant.objects.filter(table=table, group=group).delete()
            continue
        allowed[Action.VIEW.value] = True
        TableGrant.objects.update_or_create(
            table=table, group=group, defaults={f"can_{a}": v for a, v in allowed.items()}
        )
    after = _granted(table)
    if after != before:
        trail.record("table.grants", table, before=before, after=after)


def _granted(table: Table) -> dict[str, list[str]]:
    """Each group with a grant on ``table`` and what it may do, as the audit trail keeps it."""
    return {
        grant.group.name: [a for a in GRANT_ACTIONS if getattr(grant, f"can_{a}")]
        for grant in table.grants.select_related("group").order_by("group__name")
    }
