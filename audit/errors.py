"""The audit app's exceptions."""

from __future__ import annotations


class AuditTrailError(Exception):
    """Base of the audit app's errors."""


class AppendOnlyError(AuditTrailError):
    """An audit row was to be changed or deleted (only retention removes rows)."""
