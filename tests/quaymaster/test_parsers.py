"""The API's JSON parser turns a body nested deeper than the decoder can follow into a 400."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_a_body_nested_too_deeply_is_a_400_not_a_500():
    user = User.objects.create_user("root")
    user.groups.add(Group.objects.get(name="admins"))
    client = APIClient()
    client.force_authenticate(user)
    body = "[" * 100_000 + "]" * 100_000
    answer = client.post("/api/v1/jobs/runs/", body, content_type="application/json")
    assert answer.status_code == 400
    assert answer.json()["code"] == "parse_error"
    assert "nested too deeply" in answer.json()["detail"]
