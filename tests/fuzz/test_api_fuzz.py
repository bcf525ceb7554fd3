"""Schemathesis against the OpenAPI document the app serves: every operation, with generated
valid and invalid parameters and bodies, as an admin and as a business user.

The app runs in-process (WSGI) on the test database, so the run works on SQLite and
PostgreSQL alike. Path parameters name what exists (``tests.fuzz.world``) three times in
four, so the publish and record endpoints are reached, and are generated otherwise. Each
generated request runs in a savepoint that is rolled back, so every request meets the same
data (a deleted table does not hide the rest of the run).

Checks: no answer is a 5xx, and an answer with a documented status matches its schema.
The smoke run is small and seeded (repeatable); ``make fuzz`` sets
``QUAYMASTER_FUZZ_SCALE`` (more examples, and the coverage phase's boundary cases) for the
long one.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import schemathesis
from django.db import transaction
from drf_spectacular.renderers import OpenApiJsonRenderer
from drf_spectacular.views import SpectacularAPIView
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from quaymaster.wsgi import application
from tests.fuzz.strategies import examples
from tests.fuzz.world import World, build

#: Generated cases per operation and generation mode (valid, invalid).
EXAMPLES = examples(8)
LONG = EXAMPLES > 8
SEED = int(os.environ.get("QUAYMASTER_FUZZ_SEED", "15"))

CONFIG = {
    "seed": SEED,
    "generation": {"mode": "all", "max-examples": EXAMPLES, "deterministic": not LONG},
    # The coverage phase's boundary cases are many per operation: the long run only.
    "phases": {"coverage": {"enabled": LONG}, "stateful": {"enabled": False}},
}


def served_document() -> bytes:
    """The document ``/api/schema/?format=json`` serves, made as its view makes it: the tests
    are collected before there is a database to authenticate against
    (``test_the_fuzzed_document_is_the_served_one`` proves the two the same)."""
    generator = SpectacularAPIView.generator_class()
    return OpenApiJsonRenderer().render(generator.get_schema(request=None, public=True))


schema = schemathesis.openapi.from_dict(
    json.loads(served_document()), config=schemathesis.Config.from_dict(CONFIG)
)
schema.app = application


class Rolled(Exception):
    """Leaves the savepoint so that the request's writes are rolled back."""


@pytest.fixture(params=["admin", "business"])
def fuzz_user(request: pytest.FixtureRequest, db: None, in_process_requests: None) -> Any:
    """Who calls, and the world they call in."""
    return request.param, build()


def test_the_fuzzed_document_is_the_served_one(db: None) -> None:
    world = build()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.admin_token}")
    served = client.get("/api/schema/?format=json")
    assert served.status_code == 200
    assert json.loads(served.content) == json.loads(served_document())


@schema.parametrize()
@schema.given(use_known=st.integers(0, 3))
@settings(deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)
def test_no_server_error_and_documented_answers(
    case: Any, use_known: int, fuzz_user: tuple[str, World]
) -> None:
    who, world = fuzz_user
    if use_known and case.path_parameters:
        case.path_parameters = {
            name: world.known.get(name, value) for name, value in case.path_parameters.items()
        }
    wait = (case.query or {}).get("wait")
    if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > 0.1:
        case.query["wait"] = 0.1  # a run's results wait up to 30 s for it to end: none ends here
    token = world.admin_token if who == "admin" else world.business_token
    try:
        with transaction.atomic():
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )
            raise Rolled
    except Rolled:
        pass
