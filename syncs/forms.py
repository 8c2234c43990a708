from django import forms
from django.utils.text import slugify

from syncs import keyschema
from syncs.models import EnvScope, EnvType, FileFormat, Sync

NAME_HELP = "Lowercase letters, digits and -, unique in the workspace."


class SourceForm(forms.Form):
    environment = forms.ChoiceField(label="Environment")
    secret_path = forms.ChoiceField(label="Secret Path", help_text="The folder whose secrets are synced.")

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.environments = list(workspace.environments.prefetch_related("folders"))
        self.fields["environment"].choices = [(e.slug, e.name) for e in self.environments]
        self.fields["secret_path"].choices = [
            (e.name, [(f.path, f.path) for f in e.folders.all()]) for e in self.environments
        ]

    def clean(self):
        data = super().clean()
        env = next((e for e in self.environments if e.slug == data.get("environment")), None)
        if env and data.get("secret_path") and not any(f.path == data["secret_path"] for f in env.folders.all()):
            self.add_error("secret_path", f"{env.name} has no folder {data['secret_path']}.")
        return data


class DestinationForm(forms.Form):
    connection = forms.ChoiceField(label="DigitalOcean Connection")
    app_id = forms.CharField(label="App")
    component = forms.CharField(label="Write to", required=False)
    env_type = forms.ChoiceField(label="Variable type", choices=EnvType.choices, initial=EnvType.SECRET)
    env_scope = forms.ChoiceField(label="Scope", choices=EnvScope.choices, initial=EnvScope.RUN_AND_BUILD_TIME)

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["connection"].choices = [(str(c.pk), c.name) for c in workspace.connections.all()]


class ServerDestinationForm(forms.Form):
    """Destination "Devpilot servers": one server or a tag, and the file the agent writes there."""

    target = forms.ChoiceField(label="Servers")
    file_path = forms.CharField(label="File path", required=False, max_length=512,
                                help_text="Absolute. Empty: /etc/devpilot/<sync name>.env.")
    file_format = forms.ChoiceField(label="Format", choices=FileFormat.choices, initial=FileFormat.DOTENV)
    file_owner = forms.CharField(label="Owner", required=False, max_length=32, help_text="A user on the server; "
                                 "empty: the agent's (root).")
    file_group = forms.CharField(label="Group", required=False, max_length=32)
    file_mode = forms.CharField(label="Mode", max_length=4, initial="0600", help_text="Octal, e.g. 0600 or 0640.")
    reload_command = forms.ChoiceField(label="Reload command", required=False,
                                       help_text="Run by the agent after writing the file; admins list the allowed "
                                                 "commands on each server's page.")

    def __init__(self, *args, workspace, keep_tag="", **kwargs):
        """`keep_tag`: the tag a sync being edited writes to, offered even when no server holds it now."""
        from provisioning.models import Server

        super().__init__(*args, **kwargs)
        servers = list(Server.objects.live().filter(workspace=workspace).order_by("name"))
        tags = sorted({tag for server in servers for tag in server.devpilot_tags or []} | ({keep_tag} - {""}))
        self.fields["target"].choices = [("Servers", [(f"server:{s.pk}", s.name) for s in servers]),
                                         ("Every server with the tag", [(f"tag:{t}", t) for t in tags])]
        commands = sorted({c for server in servers for c in server.reload_commands or []})
        self.fields["reload_command"].choices = [("", "None")] + [(c, c) for c in commands]

    def clean_file_path(self):
        from syncs.destinations.devpilot_server import path_problem

        path = self.cleaned_data["file_path"].strip()
        if path and path_problem(path):
            raise forms.ValidationError(path_problem(path))
        return path

    def clean_file_mode(self):
        from syncs.destinations.devpilot_server import mode_problem

        mode = self.cleaned_data["file_mode"].strip()
        if mode_problem(mode):
            raise forms.ValidationError(mode_problem(mode))
        return mode


class OptionsForm(forms.Form):
    initial_sync_behavior = forms.ChoiceField(
        label="Initial Sync Behavior",
        choices=[("overwrite-destination", "Overwrite Destination Secrets")],
        help_text="Removes secrets at the destination not present in Devpilot (App Platform cannot import).",
    )
    key_schema = forms.CharField(
        label="Key Schema", required=False, max_length=255,
        help_text="e.g. APP_{{secretKey}}. With a schema Devpilot manages only matching keys; without one, "
                  "every variable at the destination.",
    )
    auto_sync_enabled = forms.BooleanField(label="Auto-Sync Enabled", required=False, initial=True)
    disable_secret_deletion = forms.BooleanField(label="Disable Secret Deletion", required=False)

    def clean_key_schema(self):
        try:
            return keyschema.validate(self.cleaned_data["key_schema"])
        except keyschema.KeySchemaError as e:
            raise forms.ValidationError(str(e)) from None


class DetailsForm(forms.Form):
    name = forms.SlugField(label="Name", max_length=64, help_text=NAME_HELP)
    description = forms.CharField(label="Description", required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, workspace, exclude=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        self.exclude = exclude

    def clean_name(self):
        name = self.cleaned_data["name"].lower()
        others = Sync.objects.filter(workspace=self.workspace, name=name)
        if self.exclude is not None:
            others = others.exclude(pk=self.exclude.pk)
        if others.exists():
            raise forms.ValidationError(f"A sync named {name} already exists in this workspace.")
        return name


def suggest_name(app_name, environment_slug):
    return slugify(f"{app_name}-{environment_slug}")[:64] or "sync"
