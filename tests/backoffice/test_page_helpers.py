"""The pages' shared helpers: ``access.get_for`` (the one way to load what a URL names) and
``problems.EngineCall`` (the one place a ``QueueError`` becomes words)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Group, User
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.test import RequestFactory

from accounts.models import ApiToken
from backoffice.access import get_for
from backoffice.problems import EngineCall
from queues.errors import QueueError
from tests.zstorage.builders import make_table
from zstorage.models import Table, TableGrant
from zstorage.permissions import Action

pytestmark = pytest.mark.django_db


def request_by(user: User | AnonymousUser) -> HttpRequest:
    request = RequestFactory().post("/")
    request.user = user
    request.session = {}  # type: ignore[assignment]
    request._messages = FallbackStorage(request)  # type: ignore[attr-defined]
    return request


def business_user() -> User:
    user = User.objects.create_user("bea")
    user.groups.add(Group.objects.get(name="business users"))
    return user


def test_nothing_there_is_404():
    make_table("orders")
    admin = User.objects.create_superuser("root")
    with pytest.raises(Http404):
        get_for(request_by(admin), Table, slug="nope")
    assert get_for(request_by(admin), Table, Action.DELETE, slug="orders").slug == "orders"


def test_a_table_the_user_may_not_see_is_404_and_one_they_only_see_is_403():
    make_table("orders")
    viewer = request_by(business_user())
    with pytest.raises(Http404):
        get_for(viewer, Table, slug="orders")
    TableGrant.objects.create(
        table=Table.objects.get(slug="orders"),
        group=Group.objects.get(name="business users"),
        can_view=True,
    )
    assert get_for(viewer, Table, slug="orders").slug == "orders"
    with pytest.raises(PermissionDenied):
        get_for(viewer, Table, Action.CHANGE, slug="orders")
    with pytest.raises(Http404):
        get_for(request_by(AnonymousUser()), Table, slug="orders")


def test_other_objects_are_narrowed_by_the_source_the_page_passes():
    owner, other = User.objects.create_user("ada"), User.objects.create_user("bob")
    token, _ = ApiToken.issue(other, "bob's script")
    request = request_by(owner)
    with pytest.raises(Http404):
        get_for(request, ApiToken.objects.filter(user=owner), pk=token.pk)
    assert get_for(request, ApiToken, pk=token.pk) == token


def test_an_engine_call_turns_a_queue_error_into_its_reason_and_a_message():
    request = request_by(User.objects.create_user("ada"))
    with EngineCall(request, failed="Not deleted") as call:
        raise QueueError("The broker does not answer.")
    assert not call.ok
    assert call.problem == "The broker does not answer."
    assert [str(m) for m in get_messages(request)] == ["Not deleted: The broker does not answer."]

    with EngineCall() as quiet:
        raise QueueError("gone")
    assert quiet.problem == "gone"

    with EngineCall(request, failed="Not deleted") as fine:
        pass
    assert (fine.ok, fine.problem, fine.error) == (True, "", None)


def test_an_engine_call_lets_other_errors_through():
    with pytest.raises(ZeroDivisionError), EngineCall():
        1 / 0  # noqa: B018
