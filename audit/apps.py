from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The audit trail: an append-only row for every admin and destructive action. The lowest
    app, so every app above it can write to it."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "audit"
    verbose_name = "Audit trail"
