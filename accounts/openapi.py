"""The API token scheme in the OpenAPI document: drf-spectacular cannot describe an
authentication class it does not know, so every operation listed no way to authenticate
but the session cookie. Imported by ``AccountsConfig.ready``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "qm_…",
            "description": "An API token: 'Authorization: Bearer qm_…' ('Token qm_…' works too).",
        }
