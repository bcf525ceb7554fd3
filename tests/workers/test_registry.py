"""Handler registration, discovery and message decoding."""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest

from queues.messages import Delivery
from workers.context import Context
from workers.errors import HandlerAlreadyRegistered, HandlerNotFound, MalformedMessage
from workers.message import decode
from workers.registry import Registry, discover, registry


def delivery(body: bytes) -> Delivery:
    return Delivery("00000000-0000-0000-0000-000000000001", body, 1, {}, None)


def test_a_decorated_function_is_found_by_its_name_and_stays_callable() -> None:
    handlers = Registry()

    @handlers.handler("greet")
    def greet(message: dict[str, Any], ctx: Context) -> str:
        return f"hello {message['who']}"

    assert handlers.get("greet").fn is greet
    assert greet({"who": "ada"}, None) == "hello ada"  # type: ignore[arg-type]
    assert "greet" in handlers
    assert handlers.names() == ["greet"]


def test_an_unknown_name_raises_handler_not_found() -> None:
    with pytest.raises(HandlerNotFound, match="'missing'"):
        Registry().get("missing")


def test_two_functions_cannot_share_a_name_but_the_same_one_may_register_again() -> None:
    handlers = Registry()

    def first(message: dict[str, Any], ctx: Context) -> None: ...

    def second(message: dict[str, Any], ctx: Context) -> None: ...

    handlers.handler("name")(first)
    handlers.handler("name")(first)  # a module imported twice
    with pytest.raises(HandlerAlreadyRegistered, match="first"):
        handlers.handler("name")(second)


def test_a_handler_name_must_be_a_non_empty_string() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        Registry().handler("  ")


def test_discovery_imports_the_apps_handlers_and_the_configured_modules(settings: Any) -> None:
    sys.modules.pop("tests.workers.handlers_for_discovery", None)
    settings.QUAYMASTER_HANDLER_MODULES = ["tests.workers.handlers_for_discovery"]
    found = discover()
    assert found is registry
    assert {"send_email", "webhook", "log"} <= set(found.names()), "workers/handlers.py"
    assert "tests.discovered" in found


def test_a_missing_handler_module_stops_discovery(settings: Any) -> None:
    settings.QUAYMASTER_HANDLER_MODULES = ["tests.workers.no_such_module"]
    with pytest.raises(ModuleNotFoundError):
        discover()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{nope", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'"text"', "not an object (it is a string)"),
        (b"null", "not an object (it is null)"),
        (b"12", "not an object (it is a number)"),
        (b'{"handler": ""}', "no string 'handler'"),
        (b'{"handler": ["a"]}', "no string 'handler'"),
    ],
)
def test_malformed_bodies_say_what_is_wrong(body: bytes, error: str) -> None:
    with pytest.raises(MalformedMessage, match=re.escape(error)):
        decode(delivery(body))


def test_a_good_body_names_its_handler() -> None:
    message = decode(delivery(b'{"handler": "send_email", "to": "a@example.com"}'))
    assert message.handler == "send_email"
    assert message.body["to"] == "a@example.com"
