"""Who may do what with a table. Admins (``accounts.roles.is_admin``: superusers or the
``admins`` group) may do everything; other users act on a table's records only through their
groups' grants."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.db.models import Q, QuerySet

from accounts.roles import is_admin
from zstorage.models import Table, TableGrant


class Action(StrEnum):
    VIEW = "view"
    ADD = "add"
    CHANGE = "change"
    DELETE = "delete"


def _grants(user: Any, action: Action) -> QuerySet[TableGrant]:
    return TableGrant.objects.filter(group__user=user, **{f"can_{action.value}": True})


def can(user: Any, table: Table, action: Action) -> bool:
    if is_admin(user):
        return True
    if not getattr(user, "is_authenticated", False):
        return False
    return _grants(user, action).filter(table=table).exists()


def visible_tables(user: Any) -> QuerySet[Table]:
    if is_admin(user):
        return Table.objects.all()
    return Table.objects.filter(Q(grants__in=_grants(user, Action.VIEW))).distinct()
