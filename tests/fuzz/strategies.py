"""Random JSON for the property tests: any value a client can send, with object keys drawn
mostly from the names the checks look for (field keys, operators, ``handler``), so that the
checks are reached beyond their first refusal."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import strategies as st

OPERATORS = [
    "$and", "$or", "$not", "$exists", "$eq", "$ne", "$gt", "$gte", "$lt", "$lte",
    "$in", "$nin", "$contains", "$icontains", "$startswith", "$regex",
]  # fmt: skip


def json_values(keys: list[str]) -> st.SearchStrategy[Any]:
    """Any JSON value (numbers past 64 bits, NaN and infinities included: Python's decoder
    reads them), its objects keyed mostly by ``keys``."""
    names = st.one_of(st.sampled_from(keys), st.text(max_size=6))
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 5),
        st.integers(),
        st.integers(-(2**70), 2**70),
        st.floats(),
        st.sampled_from(["", "open", "a", "2024-05-01", "2024-05-01T10:00:00Z", "1e999", "x\x00"]),
        st.text(max_size=8),
        names,
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(names, children, max_size=4)
        ),
        max_leaves=24,
    )


def json_objects(keys: list[str]) -> st.SearchStrategy[Any]:
    """Mostly objects, sometimes any JSON value."""
    values = json_values(keys)
    names = st.one_of(st.sampled_from(keys), st.text(max_size=6))
    return st.one_of(st.dictionaries(names, values, max_size=5), values)


def examples(base: int) -> int:
    """``base`` examples, times ``QUAYMASTER_FUZZ_SCALE`` (``make fuzz`` raises it)."""
    return base * max(1, int(os.environ.get("QUAYMASTER_FUZZ_SCALE", "1")))
