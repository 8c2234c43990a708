from django.db import migrations, models


def paths_from_commands(apps, schema_editor):
    """A delivery written before this migration is at the path its latest command named."""
    ServerDelivery = apps.get_model("syncs", "ServerDelivery")
    for delivery in ServerDelivery.objects.exclude(command=None).select_related("command"):
        delivery.path = (delivery.command.payload or {}).get("path", "")
        delivery.save(update_fields=["path"])


class Migration(migrations.Migration):

    dependencies = [
        ("syncs", "0007_server_destination"),
    ]

    operations = [
        migrations.AddField(
            model_name="serverdelivery",
            name="path",
            field=models.CharField(blank=True, max_length=512),
        ),
        migrations.RunPython(paths_from_commands, migrations.RunPython.noop),
    ]
