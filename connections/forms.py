from django import forms


class ConnectForm(forms.Form):
    name = forms.CharField(label="Access Key", max_length=64)
    token = forms.CharField(label="Secret Key", widget=forms.PasswordInput(render_value=False), strip=True)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class RotateForm(forms.Form):
    token = forms.CharField(label="New Secret Key", widget=forms.PasswordInput(render_value=False), strip=True)
