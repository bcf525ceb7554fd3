"""The field-type registry (see ``base.py`` for what a type owns).

Each other module of this package holds a family of types, registered with ``@register`` when
the module is imported; every module here is imported with the package, so a new type is one
class in one module of this folder (a new module included) and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil

from zstorage.fields.base import (
    Domain,
    FieldKind,
    FilterSpec,
    InvalidValue,
    has_nul,
    kind_of,
    register,
    registered_types,
    type_choices,
)

__all__ = [
    "Domain",
    "FieldKind",
    "FilterSpec",
    "InvalidValue",
    "has_nul",
    "kind_of",
    "register",
    "registered_types",
    "type_choices",
]

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")
