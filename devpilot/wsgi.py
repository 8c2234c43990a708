import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "devpilot.settings")
application = get_wsgi_application()

# What every API request checks its query against, built now (about a second) rather than by the first request.
from devpilot.middleware import declared_query_parameters  # noqa: E402 - needs the application loaded

declared_query_parameters()
