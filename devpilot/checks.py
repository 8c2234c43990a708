from django.core import checks
from django.core.exceptions import ImproperlyConfigured


@checks.register(checks.Tags.security)
def encryption_keys(app_configs, **kwargs):
    from devpilot.crypto import load_keys

    try:
        load_keys()
    except ImproperlyConfigured as e:
        return [checks.Error(str(e), id="devpilot.E001")]
    return []
