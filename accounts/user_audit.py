"""The audit trail of users and groups, wherever they are edited (Django's admin, a shell,
``createsuperuser``): signals on ``User`` and ``Group`` and on their many-to-many relations
(a user's groups and permissions, a group's permissions) write the rows, in the change's
transaction.

A login's ``last_login`` update is not a change worth a row; a new password is recorded as
``password_changed`` (never the hash).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import models
from django.db.models.signals import m2m_changed, post_save, pre_delete, pre_save

from audit import trail

USER_FIELDS = (
    "username",
    "first_name",
    "last_name",
    "email",
    "is_active",
    "is_staff",
    "is_superuser",
)
_BEFORE = "_audit_before"


def _user_values(user: Any) -> dict[str, Any]:
    return {name: getattr(user, name, None) for name in USER_FIELDS}


def _only_login(update_fields: Any) -> bool:
    return update_fields is not None and set(update_fields) <= {"last_login"}


def _user_before(sender: Any, instance: Any, update_fields: Any = None, **_: Any) -> None:
    if instance.pk is None or _only_login(update_fields):
        return
    stored = sender._default_manager.filter(pk=instance.pk).first()
    if stored is not None:
        setattr(instance, _BEFORE, (_user_values(stored), stored.password))


def _user_saved(instance: Any, created: bool, update_fields: Any = None, **_: Any) -> None:
    if _only_login(update_fields):
        return
    after = _user_values(instance)
    if created:
        trail.record("user.create", instance, after=after)
        return
    stored = instance.__dict__.pop(_BEFORE, None)
    if stored is None:
        return
    before, password = stored
    changed_password = password != instance.password
    if before != after or changed_password:
        details = {"password_changed": True} if changed_password else None
        trail.record("user.change", instance, before=before, after=after, details=details)


def _user_deleted(instance: Any, **_: Any) -> None:
    trail.record("user.delete", instance, before=_user_values(instance))


def _group_before(instance: Group, **_: Any) -> None:
    if instance.pk is not None:
        stored = Group.objects.filter(pk=instance.pk).values("name").first()
        if stored is not None:
            setattr(instance, _BEFORE, stored)


def _group_saved(instance: Group, created: bool, **_: Any) -> None:
    if created:
        trail.record("group.create", instance, after={"name": instance.name})
        return
    before = instance.__dict__.pop(_BEFORE, None)
    if before is not None and before != {"name": instance.name}:
        trail.record("group.change", instance, before=before, after={"name": instance.name})


def _group_deleted(instance: Group, **_: Any) -> None:
    trail.record("group.delete", instance, before={"name": instance.name})


def _names(model: type[models.Model], pks: Any) -> list[str]:
    if not pks:
        return []
    if model is Permission:
        found = Permission.objects.filter(pk__in=pks).select_related("content_type")
        return sorted(f"{p.content_type.app_label}.{p.codename}" for p in found)
    return sorted(str(o) for o in model._default_manager.filter(pk__in=pks))


def _membership(event: str, what: str) -> Any:
    """An m2m_changed receiver recording ``event`` on the owning side (a user's groups, a
    group's permissions), whichever side the change was made from."""

    def receiver(
        instance: models.Model,
        action: str = "",
        reverse: bool = False,
        model: type[models.Model] | None = None,
        pk_set: set[Any] | None = None,
        **_: Any,
    ) -> None:
        change = {"post_add": "added", "post_remove": "removed", "pre_clear": "removed"}.get(action)
        if change is None or model is None:
            return
        if action == "pre_clear":  # the pks are not given: read them before they go
            if reverse:
                return
            pk_set = set(getattr(instance, what).values_list("pk", flat=True))
            if not pk_set:
                return
        if reverse:  # group.user_set.add(user): a row on each user
            for owner in model._default_manager.filter(pk__in=pk_set or ()):
                trail.record(event, owner, details={what: [str(instance)], "change": change})
        else:
            trail.record(event, instance, details={what: _names(model, pk_set), "change": change})

    return receiver


def connect() -> None:
    user_model = get_user_model()
    pre_save.connect(_user_before, sender=user_model, dispatch_uid="audit-user-before")
    post_save.connect(_user_saved, sender=user_model, dispatch_uid="audit-user-saved")
    pre_delete.connect(_user_deleted, sender=user_model, dispatch_uid="audit-user-deleted")
    pre_save.connect(_group_before, sender=Group, dispatch_uid="audit-group-before")
    post_save.connect(_group_saved, sender=Group, dispatch_uid="audit-group-saved")
    pre_delete.connect(_group_deleted, sender=Group, dispatch_uid="audit-group-deleted")
    m2m_changed.connect(
        _membership("user.groups", "groups"),
        sender=user_model.groups.through,
        dispatch_uid="audit-user-groups",
        weak=False,
    )
    m2m_changed.connect(
        _membership("user.permissions", "user_permissions"),
        sender=user_model.user_permissions.through,
        dispatch_uid="audit-user-permissions",
        weak=False,
    )
    m2m_changed.connect(
        _membership("group.permissions", "permissions"),
        sender=Group.permissions.through,
        dispatch_uid="audit-group-permissions",
        weak=False,
    )
