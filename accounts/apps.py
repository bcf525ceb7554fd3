from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        # The token scheme (bearer qm_…) in the API document: drf-spectacular finds it through
        # this module's extension once it is imported.
        from accounts import openapi  # noqa: F401

        # Users and groups, wherever they are edited, write the audit trail.
        from accounts.user_audit import connect

        connect()
