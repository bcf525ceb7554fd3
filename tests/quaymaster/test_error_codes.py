"""The README's table of API error codes is the list the code defines: every code an exception
of ours carries (with its status), every code given to DRF's exceptions by name, and DRF's own
that the exception handler passes through. A code added without a row, or a row left after its
code went, fails here."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

from rest_framework import exceptions, status

ROOT = Path(__file__).resolve().parents[2]
APPS = [
    "audit",
    "accounts",
    "zstorage",
    "queues",
    "workers",
    "jobs",
    "alerts",
    "backoffice",
    "quaymaster",
]
#: DRF's exceptions the API can answer with, by their own codes (ValidationError is "invalid").
DRF = [
    exceptions.NotAuthenticated,
    exceptions.AuthenticationFailed,
    exceptions.PermissionDenied,
    exceptions.NotFound,
    exceptions.MethodNotAllowed,
    exceptions.NotAcceptable,
    exceptions.UnsupportedMediaType,
    exceptions.Throttled,
    exceptions.ParseError,
]
ROW = re.compile(r"^\| `(?P<code>[a-z_]+)` \| (?P<status>\d{3}) \|", re.M)
#: A code given by name to one of DRF's exceptions (``PermissionDenied(..., code="…")``) or as
#: a permission class's ``code = "…"`` (a model's ValidationError codes are not the API's).
NAMED = re.compile(
    r"""(?:(?:Denied|NotFound|Failed|ParseError)\((?:[^()]|\([^()]*\))*?\bcode="([a-z_]+)")"""
    r"""|(?:^\s+code = "([a-z_]+)"\s*$)""",
    re.M,
)


def documented() -> dict[str, int]:
    text = (ROOT / "README.md").read_text()
    section = text.split("### API error codes", 1)[1].split("\n### ", 1)[0]
    return {m["code"]: int(m["status"]) for m in ROW.finditer(section)}


def domain_codes() -> dict[str, int]:
    """Each ``code`` our exception classes define, with its status."""
    for app in APPS:
        package = importlib.import_module(app)
        for module in pkgutil.walk_packages(package.__path__, f"{app}."):
            if not any(part in module.name for part in (".migrations", ".management")):
                importlib.import_module(module.name)
    found: dict[str, int] = {}

    def walk(cls: type) -> None:
        for sub in cls.__subclasses__():
            code = sub.__dict__.get("code")
            if isinstance(code, str) and sub.__module__.split(".")[0] in APPS:
                found[code] = int(getattr(sub, "status", status.HTTP_400_BAD_REQUEST))
            walk(sub)

    walk(Exception)
    return found


def named_codes() -> set[str]:
    """Codes given by name in our code (``PermissionDenied(..., code="…")``, a permission's
    ``code = "…"``)."""
    found: set[str] = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                found.update(a or b for a, b in NAMED.findall(path.read_text()))
    return found


def test_every_code_is_in_the_readme_table_and_every_row_is_a_code():
    table = documented()
    assert len(table) > 40, "the table was not found"
    ours = domain_codes()
    drf = {cls.default_code: cls.status_code for cls in DRF} | {"invalid": 400}
    named = named_codes()
    expected = set(ours) | set(drf) | named
    assert sorted(expected - set(table)) == [], "codes missing from the README's table"
    assert sorted(set(table) - expected) == [], "rows of the README's table no code has"
    for code, answer in {**drf, **ours}.items():
        assert table[code] == answer, f"{code}: {answer} in the code, {table[code]} in the README"
