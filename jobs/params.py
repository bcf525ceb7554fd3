"""Parameter lists: what a run is started over, checked before anything is written.

A run's parameters are a JSON list of objects, one instance each. They arrive from Python,
from the REST API (JSON), from ``manage.py start_job`` and the start page (a JSON or CSV
file: one object per CSV row, keyed by the header, values as text).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from django.conf import settings

from jobs.errors import InvalidParameters, TooManyInstances


def max_instances() -> int:
    return int(getattr(settings, "QUAYMASTER_JOB_MAX_INSTANCES", 100_000))


def max_params_bytes() -> int:
    return int(getattr(settings, "QUAYMASTER_JOB_MAX_PARAMS_BYTES", 32 * 1024 * 1024))


def check_params(params: object) -> list[dict[str, Any]]:
    """The parameter list, or a clear error: a non-empty list of JSON objects, no more than
    ``QUAYMASTER_JOB_MAX_INSTANCES`` of them and ``QUAYMASTER_JOB_MAX_PARAMS_BYTES`` in all."""
    if not isinstance(params, list | tuple):
        raise InvalidParameters("The parameters must be a list of JSON objects, one per instance.")
    if not params:
        raise InvalidParameters("The parameter list is empty: a run needs at least one instance.")
    if len(params) > max_instances():
        raise TooManyInstances(
            f"{len(params)} instances is more than the limit of {max_instances()} per run."
        )
    for index, item in enumerate(params):
        if not isinstance(item, dict):
            raise InvalidParameters(
                f"Item {index} of the parameters is {type(item).__name__}, not a JSON object."
            )
    try:
        size = len(json.dumps(list(params), separators=(",", ":"), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidParameters(f"The parameters are not JSON: {exc}.") from None
    if size > max_params_bytes():
        raise InvalidParameters(
            f"The parameters take {size} bytes, more than the limit of {max_params_bytes()}."
        )
    return [dict(item) for item in params]


def parse_params_file(name: str, content: bytes) -> list[dict[str, Any]]:
    """A ``.json`` file (a list of objects) or a ``.csv`` file (a header, then one instance
    per row) as a checked parameter list."""
    if len(content) > max_params_bytes():
        raise InvalidParameters(
            f"The file takes {len(content)} bytes, more than the limit of {max_params_bytes()}."
        )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidParameters("The file is not UTF-8 text.") from None
    if name.lower().endswith(".csv"):
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames:
            raise InvalidParameters("The CSV file has no header row.")
        try:
            rows = [{k: v for k, v in row.items() if k is not None} for row in reader]
        except csv.Error as exc:
            raise InvalidParameters(f"The CSV file is malformed: {exc}.") from None
        return check_params(rows)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidParameters(f"The file is not JSON: {exc}.") from None
    return check_params(data)
