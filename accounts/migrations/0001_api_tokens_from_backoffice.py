"""``ApiToken`` moves here from ``backoffice`` in Django's state only.

The table stays ``backoffice_apitoken`` (created by ``backoffice.0002_api_tokens``, which this
migration depends on, so a fresh database has it too): no row moves and an existing database
loses nothing. ``backoffice.0003`` then drops the model from that app's state. The token's
content type is relabelled so permissions granted on it follow the model.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def relabel_content_type(apps, schema_editor, old="backoffice", new="accounts"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    types = ContentType.objects.using(db)
    if not types.filter(app_label=new, model="apitoken").exists():
        types.filter(app_label=old, model="apitoken").update(app_label=new)


def unlabel_content_type(apps, schema_editor):
    relabel_content_type(apps, schema_editor, old="accounts", new="backoffice")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("backoffice", "0002_api_tokens"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("queues", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ApiToken",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("name", models.CharField(max_length=200)),
                        ("key_hash", models.CharField(editable=False, max_length=64, unique=True)),
                        ("prefix", models.CharField(editable=False, max_length=12)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("last_used_at", models.DateTimeField(blank=True, null=True)),
                        ("revoked_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "queues",
                            models.ManyToManyField(
                                blank=True, related_name="api_tokens", to="queues.queue"
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="api_tokens",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "backoffice_apitoken",
                        "ordering": ["-created_at"],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(relabel_content_type, unlabel_content_type, elidable=True),
    ]
