"""Devpilot's one error family.

Services raise these; only the edges catch them. Pages show `message` (and each
`details` entry beside its field); the JSON API answers

    {"statusCode": 400, "message": "...", "error": "Bad Request", "details": [{"field": ..., "message": ...}]}

Each class fixes the HTTP status and a stable `code` that tests assert on. The words live
in the message, written once where the error is raised.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import ClassVar, TypedDict


class FieldError(TypedDict):
    field: str
    message: str


class DevpilotError(Exception):
    """Base of every error a person is meant to read."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "invalid"

    def __init__(self, message: str, *, details: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[FieldError] = list(details or [])

    @classmethod
    def for_field(cls, field: str, message: str) -> DevpilotError:
        return cls(message, details=[{"field": field, "message": message}])

    def as_json(self) -> dict:
        return error_body(self.status, self.message, self.details)


def error_body(status: int, message: str, details: list[FieldError] | None = None) -> dict:
    """The one JSON shape of every API error, whoever refused the request (a service, ninja, Django)."""
    body: dict = {"statusCode": status, "message": message, "error": HTTPStatus(status).phrase}
    if details:
        body["details"] = details
    return body


class Invalid(DevpilotError):
    """The input breaks a rule; `details` names the fields."""

    status = 400
    code = "invalid"


class Unauthenticated(DevpilotError):
    status = 401
    code = "unauthenticated"


class Forbidden(DevpilotError):
    status = 403
    code = "forbidden"


class NotFound(DevpilotError):
    status = 404
    code = "not_found"


class Conflict(DevpilotError):
    """The input is fine but the current state refuses it (a duplicate name, a stale version, a running action)."""

    status = 409
    code = "conflict"


class PayloadTooLarge(DevpilotError):
    status = 413
    code = "too_large"


class RateLimited(DevpilotError):
    status = 429
    code = "rate_limited"


class UpstreamError(DevpilotError):
    """A service Devpilot depends on (DigitalOcean) failed or refused; its own words are in the message."""

    status = 502
    code = "upstream"
