from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("devpilot", "0003_machine_identities"),
    ]

    operations = [
        migrations.AddField(
            model_name="workspace",
            name="require_mfa",
            field=models.BooleanField(default=False),
        ),
    ]
