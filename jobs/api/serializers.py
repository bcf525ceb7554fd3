"""Request shapes of the jobs API (answers are plain dictionaries built in ``jobs.runs``)."""

from __future__ import annotations

from rest_framework import serializers


class StartRunSerializer(serializers.Serializer[dict[str, object]]):
    job = serializers.CharField(max_length=200, help_text="A registered job's name.")
    params = serializers.JSONField(help_text="A list of JSON objects, one instance each.")
    parallelism = serializers.JSONField(
        required=False, help_text="Instances on the queue or running at once (≥ 1; 10 if omitted)."
    )
    priority = serializers.JSONField(
        required=False,
        allow_null=True,  # refused by jobs.runs with the other bad values: invalid_run_options
        help_text="0 to 9, higher first (0 if omitted), where the queue's engine has "
        "priorities: the database queue, a RabbitMQ queue with a max priority. SQS and Kafka "
        "ignore it (the run says so: priority-honoured, priority-note).",
    )
    queue = serializers.CharField(
        required=False, allow_blank=True, help_text="The queue the instances run on."
    )
    on_complete = serializers.CharField(
        required=False, allow_blank=True, help_text="Queue for the job.completed message."
    )
    not_before = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Start no earlier than this (ISO 8601)."
    )
    deadline = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="Instances not started by then are cancelled (ISO 8601).",
    )
    on_complete_handler = serializers.CharField(
        required=False, allow_blank=True, max_length=200, default="log"
    )


# Answers (for the API document: the views build them as dictionaries).


class JobInfoSerializer(serializers.Serializer[dict[str, object]]):
    name = serializers.CharField()
    description = serializers.CharField()


class ScheduleRowSerializer(serializers.Serializer[dict[str, object]]):
    """A schedule as ``jobs.api.schedule_views.schedule_row`` answers it."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    enabled = serializers.BooleanField()
    action = serializers.CharField()
    job = serializers.CharField(allow_blank=True)
    params = serializers.JSONField()
    parallelism = serializers.IntegerField()
    queue = serializers.CharField(allow_null=True)
    message = serializers.JSONField()
    kind = serializers.CharField()
    cron = serializers.CharField(allow_blank=True)
    every_seconds = serializers.IntegerField(allow_null=True)
    run_at = serializers.CharField(allow_null=True)
    time_zone = serializers.CharField()
    catch_up = serializers.CharField()
    next_fire = serializers.CharField(allow_null=True)
