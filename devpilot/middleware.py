"""Request-wide rules: API errors are always JSON, and DigitalOcean calls in a web request are bounded."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from http import HTTPStatus

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.utils.cache import patch_cache_control

from connections import digitalocean
from devpilot.errors import FieldError, error_body


def error_response(status: int, message: str, details: list[FieldError] | None = None) -> JsonResponse:
    return JsonResponse(error_body(status, message, details), status=status)


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") and not request.path.startswith("/api/docs")


_declared: dict[tuple[str, str], frozenset[str]] | None = None
_declaring = threading.Lock()


def declared_query_parameters() -> dict[tuple[str, str], frozenset[str]]:
    """(OpenAPI path, method) -> the query parameters the operation declares, from the API's own document.

    Building the document takes about a second, once per process: devpilot.wsgi does it before the first
    request, and the lock makes requests arriving together wait for one build instead of each making its own
    (20 agents' first heartbeats at once made 20, and timed out)."""
    global _declared
    if _declared is None:
        with _declaring:
            if _declared is None:
                from devpilot.api import api

                _declared = {
                    (path, method.upper()): frozenset(p["name"] for p in operation.get("parameters", [])
                                                      if p["in"] == "query")
                    for path, operations in api.get_openapi_schema()["paths"].items()
                    for method, operation in operations.items()}
    return _declared


def undeclared_query(request: HttpRequest) -> JsonResponse | None:
    """A 400 naming a query parameter the operation does not take, or one given twice; never silently ignored."""
    match = request.resolver_match
    if match is None or not match.route.startswith("api/v"):
        return None
    template = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", match.route)
    declared = declared_query_parameters().get((template, request.method or ""))
    if declared is None:
        return None  # an unsupported method: answered 405 by the API itself
    for name in request.GET:
        if name not in declared:
            message = f"This operation takes no query parameter {name!r}."
        elif len(request.GET.getlist(name)) > 1:
            message = f"Give {name!r} once."
        else:
            continue
        return error_response(400, f"{name}: {message}", [{"field": name, "message": message}])
    return None


class DevpilotMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def process_view(self, request: HttpRequest, view: Callable, args: tuple, kwargs: dict) -> HttpResponse | None:
        if is_api(request):
            return undeclared_query(request)
        if request.method == "POST" and any("\x00" in value for value in request.POST.values()):
            # PostgreSQL cannot store NUL; a form field carrying one is refused whole, nothing written.
            return HttpResponseBadRequest("A field contains a NUL character, which Devpilot does not store. "
                                          "Remove it and submit again.", content_type="text/plain")
        return None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with digitalocean.web_request_budget():
            response = self.get_response(request)
        if is_api(request) and response.status_code >= 400 and not response.get("Content-Type", "").startswith(
                "application/json"):
            # Django's and ninja's own refusals (405, 400 for a bad Host, 413...) in the API's shape.
            json = error_response(response.status_code, HTTPStatus(response.status_code).phrase + ".")
            if response.has_header("Allow"):
                json["Allow"] = response["Allow"]
            response = json
        if is_api(request):
            patch_cache_control(response, no_store=True)  # answers may carry secret values
        return response
