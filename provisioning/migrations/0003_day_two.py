# Day two (issue 13, the DigitalOcean parts): power state apart from provisioning progress, action
# deadlines, pending events, the archive of destroyed servers (which frees their names), size facts.

from django.db import migrations, models


def forward(apps, schema_editor):
    """Destroyed servers go to the archive; "off" was a power state, not a provisioning step."""
    Server = apps.get_model("provisioning", "Server")
    ServerStep = apps.get_model("provisioning", "ServerStep")
    for server in Server.objects.filter(status="destroyed", archived_at__isnull=True):
        Server.objects.filter(pk=server.pk).update(archived_at=server.updated_at, agent_credential_hash="",
                                                   ipv4_public=None, ipv4_private=None, ipv6_address=None)
        ServerStep.objects.filter(server_id=server.pk, status__in=["pending", "running"]).update(status="stopped")
    Server.objects.filter(status="off").update(status="ready", power_state="off")


class Migration(migrations.Migration):

    dependencies = [
        ('provisioning', '0002_outbox'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='server',
            name='server_name_unique',
        ),
        migrations.AddField(
            model_name='server',
            name='action_deadline',
            field=models.DateTimeField(blank=True, db_index=True, null=True),
        ),
        migrations.AddField(
            model_name='server',
            name='archived_at',
            field=models.DateTimeField(blank=True, db_index=True, null=True),
        ),
        migrations.AddField(
            model_name='server',
            name='disk_gb',
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='server',
            name='memory_mb',
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='server',
            name='pending_event',
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name='server',
            name='power_state',
            field=models.CharField(blank=True, choices=[('', 'Unknown'), ('new', 'Starting'), ('active', 'On'), ('off', 'Off'), ('archive', 'Archived at DigitalOcean')], default='', max_length=10),
        ),
        migrations.AddField(
            model_name='server',
            name='power_state_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='server',
            name='status_message_is_error',
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name='server',
            name='vcpus',
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='serverstep',
            name='status',
            field=models.CharField(choices=[('pending', 'Pending'), ('running', 'Running'), ('succeeded', 'Done'), ('failed', 'Failed'), ('stopped', 'Stopped')], default='pending', max_length=10),
        ),
        migrations.AddConstraint(
            model_name='server',
            constraint=models.UniqueConstraint(condition=models.Q(('archived_at__isnull', True)), fields=('workspace', 'name'), name='server_name_unique_live'),
        ),
        # Last: data changes, then no more schema changes in this transaction (PostgreSQL's deferred triggers).
        migrations.RunPython(forward, migrations.RunPython.noop),
    ]
