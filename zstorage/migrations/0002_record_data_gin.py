from django.db import migrations


def create_gin(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS zstorage_record_data_gin "
            "ON zstorage_record USING gin (data jsonb_path_ops)"
        )


def drop_gin(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS zstorage_record_data_gin")


class Migration(migrations.Migration):
    """A GIN index for containment queries on PostgreSQL; SQLite has no equivalent."""

    dependencies = [("zstorage", "0001_initial")]

    operations = [migrations.RunPython(create_gin, drop_gin)]
