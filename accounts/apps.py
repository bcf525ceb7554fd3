from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        # Connects the signals that drop cached token lookups when a token, its queues or its
        # user change: every process that can change them must listen, not only the API's.
        from accounts import authentication  # noqa: F401
        from accounts import openapi  # noqa: F401  # the token scheme in the API document
