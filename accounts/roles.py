"""The two groups the platform knows, and who counts as an admin. Admins run everything;
business users get the record pages of the tables granted to them.

The groups themselves are created by a data migration (``backoffice/migrations/0001_groups``,
applied before this app existed), so a fresh database has both.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Role(StrEnum):
    ADMINS = "admins"
    BUSINESS_USERS = "business users"


def is_admin(user: Any) -> bool:
    """Superusers and members of the ``admins`` group; never an anonymous user."""
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(user.is_superuser) or user.groups.filter(name=Role.ADMINS).exists()


def may_publish(user: Any) -> bool:
    """Admins and holders of ``queues.publish_queue`` (named as a string: this app sits below
    ``queues``) may publish messages; anyone else learns no queue's name from us either."""
    return is_admin(user) or bool(
        getattr(user, "is_authenticated", False) and user.has_perm("queues.publish_queue")
    )
