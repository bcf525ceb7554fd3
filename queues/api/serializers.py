"""Queue shapes for the API. The secret is write-only: answers carry ``masked_secret``."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from queues.models import Queue


class QueueSerializer(serializers.ModelSerializer[Queue]):
    secret = serializers.CharField(
        write_only=True, required=False, allow_blank=True, trim_whitespace=False,
        help_text="Password or secret key; never returned. Omit to keep the stored one.",
    )  # fmt: skip
    masked_secret = serializers.CharField(read_only=True)

    class Meta:
        model = Queue
        fields = [
            "id",
            "name",
            "type",
            "url",
            "region",
            "username",
            "secret",
            "masked_secret",
            "visibility_timeout",
            "max_attempts",
            "fifo",
            "partitions",
            "max_priority",
            "enabled",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Run the model's per-type validation so the API and the pages say the same."""
        secret = attrs.pop("secret", None)
        queue = Queue(**{**self._current(), **attrs})
        if secret is not None:
            queue.set_secret(secret)
        from django.core.exceptions import ValidationError

        try:
            queue.full_clean(exclude=["secret_ciphertext"], validate_unique=False)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        attrs["partitions"] = queue.partitions
        if secret is not None:
            attrs["secret_ciphertext"] = queue.secret_ciphertext
        return attrs

    def _current(self) -> dict[str, Any]:
        if self.instance is None:
            return {}
        names = [f.name for f in Queue._meta.concrete_fields if f.name not in {"id"}]
        return {name: getattr(self.instance, name) for name in names}


class TestMessageSerializer(serializers.Serializer[Any]):
    handler = serializers.CharField(default="log")
    payload = serializers.DictField(required=False, default=dict)
