"""A rule of kind "queue_paused" from the start, so a queue that pauses after consecutive
failures opens an alert (on the Alerts page and the dashboard) even before an admin writes a
rule; it notifies once an admin adds addresses or a webhook endpoint to it."""

from typing import Any

from django.db import migrations


def create(apps: Any, schema_editor: Any) -> None:
    AlertRule = apps.get_model("alerts", "AlertRule")
    AlertRule.objects.get_or_create(
        name="Queue paused", defaults={"kind": "queue_paused", "params": {}, "quiet_minutes": 60}
    )


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
