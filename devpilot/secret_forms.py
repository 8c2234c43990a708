from django import forms

from devpilot.secrets import MAX_VALUE_BYTES


class SecretForm(forms.Form):
    key = forms.CharField(max_length=255)
    value = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 1}))
    # On the Edit form: the value is replaced only when this is ticked (the current one is never shown there).
    change_value = forms.BooleanField(required=False, initial=True)
    comment = forms.CharField(required=False, max_length=1000)
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def clean_value(self):
        value = self.cleaned_data["value"].replace("\r\n", "\n")
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise forms.ValidationError("Values are at most 64 KiB.")
        return value


class ImportForm(forms.Form):
    text = forms.CharField(strip=False, widget=forms.Textarea(attrs={"rows": 12}), label="Paste a .env file")
    overwrite = forms.TypedChoiceField(
        choices=[("skip", "Skip keys that already exist"), ("overwrite", "Overwrite keys that already exist")],
        initial="skip", widget=forms.RadioSelect, coerce=lambda v: v == "overwrite", label="Existing keys",
    )

    def clean_text(self):
        # Browsers send textarea line breaks as CRLF; values keep the file's own LF.
        return self.cleaned_data["text"].replace("\r\n", "\n")


class FolderForm(forms.Form):
    name = forms.CharField(max_length=100, label="Folder name")


class EnvironmentForm(forms.Form):
    name = forms.CharField(max_length=64)
    slug = forms.CharField(max_length=64)
