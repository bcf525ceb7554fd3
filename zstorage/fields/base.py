"""The base of every field type and the registry that finds a type by its name.

A field type (a ``FieldKind`` subclass, registered with ``@register``) owns everything that
differs between types, so that adding one is one class in one module of this package:

* storage: ``coerce`` (check a value and make it canonical, the form kept in ``Record.data``),
  ``convert`` (from a value stored under another type), ``check_options``, and the database
  checks a type may need (``check_schema``, ``missing``);
* the query language: ``domain`` (how stored values compare), ``operators`` (which operators
  apply) and ``query_operand`` (an operand normalised to the stored form);
* reads: ``numeric`` (sorted and aggregated as numbers), ``searchable`` (full-text search),
  ``has_length`` (length rules apply), ``from_aggregate``;
* the pages, described as data the back-office renders: ``widget`` and ``input_attrs`` for the
  record form, ``filter`` for the list's filter input, ``display`` for reading, and the CSV
  forms ``csv_format`` / ``csv_parse``.

Nothing outside this package branches on a field's type; it asks ``kind_of(type)``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar


class InvalidValue(ValueError):
    """A value that a field type cannot accept; the message is shown to the user."""


class Domain(enum.Enum):
    """How a field's stored values compare; several field types share one domain."""

    TEXT = "text"  # JSON strings, compared code point by code point
    INTEGER = "integer"  # JSON integers (integer fields, references)
    DECIMAL = "decimal"  # plain-notation strings such as "12.50", compared as numbers
    BOOLEAN = "boolean"
    JSON = "json"  # any JSON; compared only to scalars, type and value
    SET = "set"  # a JSON list of choice strings (multi_choice)
    RECORD_ID = "record_id"


SUBSTRING = frozenset({"$contains", "$icontains", "$startswith"})
COMPARE = frozenset({"$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte"})
EQUALITY = frozenset({"$eq", "$ne", "$in", "$nin"})
#: A spreadsheet runs a cell starting with these as a formula; text exports quote them with "'".
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class FilterSpec:
    """The record list's filter input for a type.

    ``kind`` says how the page draws and reads it: ``text`` (one input, ``operator`` applied to
    what was typed), ``range`` (from/to bounds, ``$gte``/``$lte``), ``choice`` (a select of the
    field's choices, ``operator`` applied to the chosen one), ``boolean`` (yes/no) or
    ``reference`` (a record id). ``input_type`` is the HTML input type.
    """

    kind: str
    input_type: str
    operator: str = "$eq"


class FieldKind:
    """Base of every field type. Subclasses set ``type`` and ``label`` and override ``coerce``;
    the defaults below are those of plain text."""

    type: ClassVar[str]
    label: ClassVar[str]
    #: Where the type sits in the type menus (lower first).
    order: ClassVar[int] = 1000

    # Storage and the query language.
    domain: ClassVar[Domain] = Domain.TEXT
    operators: ClassVar[frozenset[str]] = COMPARE | SUBSTRING
    #: Sorted, compared and aggregated as numbers.
    numeric: ClassVar[bool] = False
    #: Values have a length (characters, or chosen items), so length rules apply.
    has_length: ClassVar[bool] = False
    #: Taken into the full-text search of a table's records.
    searchable: ClassVar[bool] = False
    #: A value can name its record ("#12 Ada Lovelace") and find it by typed text.
    labels_records: ClassVar[bool] = False

    # The pages.
    #: HTML input type of the record form (``textarea``, ``checkbox``, ``checkboxes``,
    #: ``select``, ``json`` and ``reference`` are drawn as such; the rest as ``<input type>``).
    widget: ClassVar[str] = "text"
    filter: ClassVar[FilterSpec | None] = FilterSpec("text", "search", "$icontains")
    #: The field-definition form's inputs holding this type's options.
    option_inputs: ClassVar[tuple[str, ...]] = ()
    #: The record list totals this type's values.
    summable: ClassVar[bool] = False
    #: How the record pages show a value: ``text``, ``lines``, ``pre``, ``link`` (to the URL)
    #: or ``record`` (the id of a record, linked where the reader may see it).
    shown_as: ClassVar[str] = "text"
    #: CSV exports quote values that a spreadsheet would run as a formula.
    guards_formulas: ClassVar[bool] = False

    # Values ------------------------------------------------------------------------------

    def coerce(self, value: Any, options: dict[str, Any]) -> Any:
        raise NotImplementedError

    def convert(self, value: Any, options: dict[str, Any]) -> Any:
        """Convert a value stored under another type; by default through its text form."""
        if isinstance(value, (dict, list)):
            return self.coerce(json.dumps(value), options)
        if isinstance(value, bool):
            return self.coerce("true" if value else "false", options)
        return self.coerce(str(value), options)

    def display(self, value: Any) -> str:
        """A stored value as a person reads it."""
        return "" if value is None else str(value)

    def check_options(self, options: dict[str, Any]) -> None:
        """Raise InvalidValue when the field's options do not suit the type."""

    def check_schema(self, options: dict[str, Any]) -> None:
        """Raise InvalidValue when the options name what the database lacks (run on save)."""

    def missing(self, options: Mapping[str, Any], values: Iterable[Any]) -> dict[Any, str]:
        """Canonical values the database refuses (a reference to no record), with why; the
        keys are values, so a type that refuses none (the default) may hold lists."""
        return {}

    def linked_table(self, options: Mapping[str, Any]) -> str | None:
        """The slug of the table whose records the values are (a reference); else None."""
        return None

    def from_aggregate(self, value: Any) -> Any:
        """A database aggregate (a Decimal for numbers) as the API shows it."""
        if isinstance(value, Decimal):
            return format(value.normalize(), "f")
        return value

    # The query language -------------------------------------------------------------------

    def query_operand(self, op: str, text: str, options: Mapping[str, Any]) -> str:
        """A text operand as stored values are written (only for the TEXT domain)."""
        return text

    # The record form ---------------------------------------------------------------------

    def input_value(self, value: Any) -> Any:
        """What the form's input shows for a stored value (None: empty)."""
        return "" if value is None else str(value)

    def submitted(self, post: Any, name: str) -> Any:
        """What was sent for the input ``name`` (a ``QueryDict``)."""
        return post.get(name, "")

    def from_input(self, value: Any) -> Any:
        """A submitted input as the records service takes it (None: blank). Raise InvalidValue
        only for what the service would store wrongly, not for what it refuses itself."""
        text = str(value or "")
        return None if text.strip() == "" else text.strip()

    def input_attrs(self, options: Mapping[str, Any]) -> dict[str, str]:
        """Extra attributes of the form's input (``step``, ``autocomplete``…)."""
        return {}

    def input_choices(self, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        return []

    def default_text(self, value: Any) -> str:
        """A field's default as the field form's text input shows it."""
        if isinstance(value, list):
            return ", ".join(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def parse_default(self, text: str) -> Any:
        """The field form's default text as ``coerce`` takes it; InvalidValue if unreadable."""
        return text

    # The list's filters --------------------------------------------------------------------

    def filter_bound(self, text: str) -> Any:
        """A typed filter value or range bound as the query language takes it."""
        return text

    # CSV ---------------------------------------------------------------------------------

    def csv_format(self, value: Any) -> str:
        if value is None:
            return ""
        text = str(value)
        if self.guards_formulas and text.startswith(FORMULA_START):
            return "'" + text
        return text

    def csv_parse(self, text: str) -> Any:
        """A non-empty CSV cell as the records service takes it; InvalidValue if unreadable."""
        if self.guards_formulas and text.startswith("'") and text[1:].startswith(FORMULA_START):
            return text[1:]
        return text


_REGISTRY: dict[str, FieldKind] = {}


def register(cls: type[FieldKind]) -> type[FieldKind]:
    """Class decorator: make ``cls`` the type named ``cls.type``."""
    _REGISTRY[str(cls.type)] = cls()
    return cls


def kind_of(field_type: str) -> FieldKind:
    try:
        return _REGISTRY[field_type]
    except KeyError:
        raise InvalidValue(f"Unknown field type {field_type!r}.") from None


def registered_types() -> list[str]:
    return [kind.type for kind in _ordered()]


def type_choices() -> list[tuple[str, str]]:
    """(type, label) for every registered type, for menus and the model's choices."""
    return [(str(kind.type), kind.label) for kind in _ordered()]


def _ordered() -> list[FieldKind]:
    return sorted(_REGISTRY.values(), key=lambda kind: kind.order)


def text_value(value: Any, what: str = "text") -> str:
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidValue(NUL_MESSAGE)
        return value
    raise InvalidValue(f"Enter {what}.")


NUL_MESSAGE = "Text cannot contain the NUL character."


def has_nul(value: Any) -> bool:
    """Whether a JSON value holds the NUL character in a text or a key: PostgreSQL's ``jsonb``
    cannot store it, so it is refused on every engine."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False
