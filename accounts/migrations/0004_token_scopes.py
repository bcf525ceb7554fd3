# Token scopes (accounts.scopes) and the explicit "all queues" flag. Tokens that exist keep
# what they could do: every scope, and every queue when they named none (which meant every
# queue until now; from here on an empty list is no queue).
#
# Adding the columns rebuilds backoffice_apitoken on SQLite, which drops its cache-epoch
# triggers (0002's): they are created again here, now watching the two new columns too, on
# both databases (a narrowed scope must reach every process at its next request).

import importlib

from django.db import migrations, models

TABLE = "backoffice_apitoken"
COLUMNS = ["user_id", "key_hash", "revoked_at", "scopes", "all_queues"]
EVERY_SCOPE = ["admin", "publish", "read", "write"]
epoch = importlib.import_module("accounts.migrations.0002_cache_epoch")


def keep_what_tokens_could_do(apps, schema_editor):
    ApiToken = apps.get_model("accounts", "ApiToken")
    for token in ApiToken.objects.all():
        token.scopes = EVERY_SCOPE
        token.all_queues = not token.queues.exists()
        token.save(update_fields=["scopes", "all_queues"])


def watch_columns(columns):
    def run(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_cache_epoch ON {TABLE}")
            for sql in epoch.postgresql(TABLE, columns):
                schema_editor.execute(sql)
        elif vendor == "sqlite":
            for name in ("insert", "update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_cache_epoch_{name}")
            for sql in epoch.sqlite(TABLE, columns):
                schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_table_cache_epoch")]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="scopes",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="all_queues",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(keep_what_tokens_could_do, migrations.RunPython.noop),
        migrations.RunPython(watch_columns(COLUMNS), watch_columns(epoch.WATCHED[TABLE])),
    ]
