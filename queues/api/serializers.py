"""Queue shapes for the API. The secret is write-only: answers say only ``secret_set``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from rest_framework import serializers

from queues import services
from queues.models import Queue


class QueueSerializer(serializers.ModelSerializer[Queue]):
    secret = serializers.CharField(
        write_only=True, required=False, allow_blank=True, trim_whitespace=False,
        help_text='Password or secret key; never returned. Omit to keep the stored one, "" '
        "removes it. Changing type, url or username of a queue with a stored secret needs it "
        "again in the same request (a new one, or \"\"), else 400 with fields.secret.",
    )  # fmt: skip
    secret_set = serializers.BooleanField(
        source="has_secret", read_only=True, help_text="Whether a secret is stored."
    )

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
            "secret_set",
            "visibility_timeout",
            "max_attempts",
            "fifo",
            "partitions",
            "max_priority",
            "allowed_handlers",
            "enabled",
            "pause_after_failures",
            "ordered_by_key",
            "paused_at",
            "paused_reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "paused_at", "paused_reason", "created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Run the model's per-type validation so the API and the pages say the same."""
        secret = attrs.get("secret")
        if self.instance is not None:
            problem = services.secret_required(self.instance, attrs, secret)
            if problem:
                raise serializers.ValidationError({"secret": [problem]})
        queue = Queue(**{**self._current(), **{k: v for k, v in attrs.items() if k != "secret"}})
        if secret is not None:
            queue.set_secret(secret)
        try:
            queue.full_clean(exclude=["secret_ciphertext"], validate_unique=False)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        attrs["partitions"] = queue.partitions
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Queue:
        return self._saved(lambda: services.create_queue(**validated_data))

    def update(self, instance: Queue, validated_data: dict[str, Any]) -> Queue:
        return self._saved(lambda: services.update_queue(instance, **validated_data))

    @staticmethod
    def _saved(save: Callable[[], Queue]) -> Queue:
        """Save through ``queues.services`` (the one path the pages take too)."""
        try:
            return save()
        except ValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None

    def _current(self) -> dict[str, Any]:
        if self.instance is None:
            return {}
        names = [f.name for f in Queue._meta.concrete_fields if f.name not in {"id"}]
        return {name: getattr(self.instance, name) for name in names}


class TestMessageSerializer(serializers.Serializer[Any]):
    handler = serializers.CharField(default="log")
    payload = serializers.DictField(required=False, default=dict)


# The publish API's bodies, for the API document (raw schemas: a message is any JSON object
# with a handler, which a serializer cannot say; ``queues.api.publishing`` checks them).

MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["handler"],
    "properties": {
        "handler": {
            "type": "string",
            "minLength": 1,
            "pattern": r"\S",
            "description": "The name of the handler to run.",
        }
    },
    "additionalProperties": True,
    "description": "Any JSON object with a handler; the rest is the handler's to read.",
}
BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["messages"],
    "properties": {
        "messages": {"type": "array", "minItems": 1, "maxItems": 100, "items": MESSAGE_SCHEMA}
    },
}
