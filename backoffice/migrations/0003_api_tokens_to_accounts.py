"""``ApiToken`` now lives in ``accounts`` (see ``accounts.0001_api_tokens_from_backoffice``):
drop it from this app's state only; its table stays where it is, now owned by ``accounts``."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0002_api_tokens"),
        ("accounts", "0001_api_tokens_from_backoffice"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="ApiToken")],
            database_operations=[],
        ),
    ]
