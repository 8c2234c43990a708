"""Error reports that hide sensitive variables and POST fields even with DEBUG on.

Django's SafeExceptionReporterFilter is inactive under DEBUG; a secrets manager's debug page
must still not show a token, a credential or a secret value.
"""

from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter


class AlwaysSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    def is_active(self, request: HttpRequest | None) -> bool:
        return True
