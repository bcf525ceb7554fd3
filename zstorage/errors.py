"""ZStorage's exceptions. Each carries a stable ``code`` that the API returns as is."""

from __future__ import annotations

from collections.abc import Mapping


class ZStorageError(Exception):
    code = "zstorage_error"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RecordInvalid(ZStorageError):
    """Validation failed; ``errors`` maps a field key (or ``"__all__"``) to its messages."""

    code = "invalid_record"

    def __init__(
        self, errors: Mapping[str, list[str]], message: str = "The record is invalid."
    ) -> None:
        super().__init__(message)
        self.errors = {key: list(messages) for key, messages in errors.items()}


class BulkInvalid(ZStorageError):
    """A bulk write was refused as a whole; ``errors`` maps a row index to its field errors."""

    code = "invalid_bulk"

    def __init__(self, errors: Mapping[int, Mapping[str, list[str]]]) -> None:
        super().__init__("Nothing was written: some rows are invalid.")
        self.errors = {index: dict(fields) for index, fields in errors.items()}


class VersionConflict(ZStorageError):
    code = "version_conflict"
    status = 409

    def __init__(self, record_id: int, expected: int, current: int) -> None:
        super().__init__(
            f"Record {record_id} is at version {current}, not {expected}: reload and retry."
        )
        self.current = current


class SchemaChangeRefused(ZStorageError):
    """A field change or deletion would lose data that cannot be converted."""

    code = "schema_change_refused"


class RecordNotFound(ZStorageError):
    code = "not_found"
    status = 404


class RecordReferenced(ZStorageError):
    """A record that other records reference cannot be deleted."""

    code = "record_referenced"
    status = 409


class QueryError(ZStorageError):
    """A query-language filter (or a request body) that cannot be understood.

    ``path`` names the offending part the way a reader would point at it in the JSON, e.g.
    ``"$and[1].total.$gt"`` or ``"status.$in[2]"``, and ``"$"`` for the query as a whole, so an
    API client or the filter builder in the CRUD pages can highlight it.
    """

    code = "invalid_query"

    def __init__(self, detail: str, path: str = "$") -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail
