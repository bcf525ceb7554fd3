from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("queues", "0010_replay"),
    ]

    operations = [
        # Nullable without a default: SQLite adds the column in place, keeping the triggers.
        migrations.AddField(
            model_name="queue",
            name="ordered_by_key",
            field=models.BooleanField(
                blank=True,
                help_text="Messages with one ordering key run one at a time in arrival order in "
                "each worker (different keys in parallel). Blank: on when a table link feeds the "
                "queue.",
                null=True,
            ),
        ),
    ]
