"""The two groups the platform knows. Admins run everything; business users get the record
pages of the tables granted to them."""

from enum import StrEnum


class Role(StrEnum):
    ADMINS = "admins"
    BUSINESS_USERS = "business users"
