# Folder history (point-in-time recovery): versions outlive their secret and know their folder and key;
# every folder with secrets starts its history with one base snapshot of its current state.

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def versions_know_their_folder_and_key(apps, schema_editor):
    SecretVersion = apps.get_model("devpilot", "SecretVersion")
    Secret = apps.get_model("devpilot", "Secret")
    for secret_id, folder_id, key in Secret.objects.values_list("pk", "folder_id", "key").iterator():
        SecretVersion.objects.filter(secret_id=secret_id).update(folder_id=folder_id, key=key)
    # Versions of secrets already gone have no folder to be restored into: nothing can recover them.
    SecretVersion.objects.filter(folder_id__isnull=True).delete()


def first_snapshots(apps, schema_editor):
    """Snapshot #1 of each folder: its secrets' current versions (a missing version row is written)."""
    Folder = apps.get_model("devpilot", "Folder")
    Secret = apps.get_model("devpilot", "Secret")
    SecretVersion = apps.get_model("devpilot", "SecretVersion")
    FolderSnapshot = apps.get_model("devpilot", "FolderSnapshot")
    SnapshotEntry = apps.get_model("devpilot", "SnapshotEntry")
    now = django.utils.timezone.now()
    for folder in Folder.objects.filter(secrets__isnull=False).distinct().iterator():
        snapshot = FolderSnapshot.objects.create(folder=folder, number=1, kind="base", actor_label="Devpilot",
                                                 summary="State when folder history began", created_at=now)
        entries = []
        for secret in Secret.objects.filter(folder=folder).order_by("key"):
            version = SecretVersion.objects.filter(secret=secret, version=secret.version).first()
            if version is None:
                version = SecretVersion.objects.create(
                    secret=secret, folder=folder, key=secret.key, version=secret.version,
                    value_ciphertext=secret.value_ciphertext, comment=secret.comment,
                    created_by_id=secret.updated_by_id, created_at=now)
            entries.append(SnapshotEntry(snapshot=snapshot, folder=folder, number=1, key=secret.key, version=version))
        SnapshotEntry.objects.bulk_create(entries)


class Migration(migrations.Migration):
    # Rows are updated between schema changes of the same table: PostgreSQL refuses that inside one
    # transaction ("pending trigger events"), so each operation commits on its own.
    atomic = False

    dependencies = [
        ('devpilot', '0006_secret_imports'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='secretversion',
            name='secret',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                    related_name='versions', to='devpilot.secret'),
        ),
        migrations.AddField(
            model_name='secretversion',
            name='folder',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+',
                                    to='devpilot.folder'),
        ),
        migrations.AddField(
            model_name='secretversion',
            name='key',
            field=models.CharField(default='', max_length=255),
            preserve_default=False,
        ),
        migrations.RunPython(versions_know_their_folder_and_key, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='secretversion',
            name='folder',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+',
                                    to='devpilot.folder'),
        ),
        migrations.CreateModel(
            name='FolderSnapshot',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('number', models.PositiveIntegerField()),
                ('kind', models.CharField(choices=[('create', 'Secret created'), ('edit', 'Secret changed'), ('delete', 'Secrets deleted'), ('restore', 'Version restored'), ('import', 'Bulk import'), ('promotion', 'Promotion'), ('rollback', 'Rollback'), ('base', 'State when history began')], max_length=16)),
                ('actor_label', models.CharField(blank=True, max_length=200)),
                ('summary', models.CharField(blank=True, max_length=300)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('folder', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='snapshots', to='devpilot.folder')),
            ],
            options={
                'ordering': ['-number'],
                'indexes': [models.Index(fields=['folder', 'created_at'], name='devpilot_fo_folder__44f993_idx')],
                'constraints': [models.UniqueConstraint(fields=('folder', 'number'), name='snapshot_number_unique')],
            },
        ),
        migrations.CreateModel(
            name='SnapshotEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveIntegerField()),
                ('key', models.CharField(max_length=255)),
                ('folder', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='devpilot.folder')),
                ('snapshot', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='entries', to='devpilot.foldersnapshot')),
                ('version', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='devpilot.secretversion')),
            ],
            options={
                'indexes': [models.Index(fields=['folder', 'key', 'number'], name='devpilot_sn_folder__e2bfac_idx')],
                'constraints': [models.UniqueConstraint(fields=('snapshot', 'key'), name='snapshot_entry_key_unique')],
            },
        ),
        migrations.RunPython(first_snapshots, migrations.RunPython.noop),
    ]
