"""Template helpers for the back-office: who is an admin, and how a stored value reads."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from accounts.roles import is_admin as _is_admin
from backoffice.values import display_value, docstring_html
from zstorage.fields import kind_of
from zstorage.models import Field

register = template.Library()


@register.filter
def is_admin(user: Any) -> bool:
    return _is_admin(user)


@register.filter
def display(value: Any, field: Field) -> str:
    """A stored value as a person reads it (``Yes``, ``a, b``, a local date and time)."""
    return display_value(field, value)


@register.filter
def docstring(text: str) -> str:
    """A docstring as HTML: escaped, its ``literals`` as code."""
    return docstring_html(text or "")


@register.filter
def type_label(field: Field) -> str:
    """The field's type as a person names it ("Date and time", "Phone")."""
    try:
        return kind_of(field.type).label
    except ValueError:
        return field.type


@register.filter
def shown_as(field: Field) -> str:
    """How the record pages show the field's values (``FieldKind.shown_as``)."""
    return kind_of(field.type).shown_as


@register.filter
def get(mapping: Any, key: Any) -> Any:
    """``{{ mapping|get:key }}``: templates cannot index by a variable otherwise."""
    if mapping is None:
        return None
    try:
        return mapping[key]
    except (KeyError, IndexError, TypeError):
        return None


@register.simple_tag
def reference(labels: Any, key: str, value: Any) -> str:
    """A reference value as ``#31 Ada Lovelace``, linked to that record when the user may see
    its table (``backoffice.references.ReferenceLabels``); a bare ``#31`` otherwise."""
    if labels is None:
        return f"#{value}"
    text = labels.label(key, value)
    href = labels.link(key, value)
    return format_html('<a href="{}">{}</a>', href, text) if href else text


@register.simple_tag(takes_context=True)
def nav_link(context: template.Context, url_name: str, label: str) -> str:
    """A navigation link marked ``aria-current`` on its own section's pages."""
    href = reverse(url_name)
    request = context.get("request")
    path = request.path if request is not None else ""
    current = path == href if href == "/" else path.startswith(href)
    return format_html(
        '<a href="{}"{}>{}</a>', href, mark_safe(' aria-current="page"') if current else "", label
    )


@register.filter
def params_text(params: dict[str, Any]) -> list[tuple[str, str]]:
    """A rule's params as short texts: lists joined, the rest as written."""
    return [
        (name, ", ".join(map(str, value)) if isinstance(value, list) else str(value))
        for name, value in (params or {}).items()
    ]
