"""What valid input to a connection is: one definition for the Integrations pages and the API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from devpilot.schemas import Description, Id, Out, Strict

AccessKey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"\S")]
# DigitalOcean personal access tokens are ~71 characters; anything past 500 is not a token.
SecretKey = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^\S+$")]


class Credentials(Strict):
    apiToken: SecretKey


class ConnectionCreate(Strict):
    name: AccessKey
    # Optional: a token belongs to one workspace, which is the default. Null is refused.
    projectId: Id = None  # type: ignore[assignment]
    method: Literal["api-token"] = "api-token"
    credentials: Credentials
    description: Description = ""


class ConnectionUpdate(Strict):
    name: AccessKey = None  # type: ignore[assignment]
    description: Description = None  # type: ignore[assignment]
    method: Literal["api-token"] = "api-token"
    credentials: Credentials = None  # type: ignore[assignment]
    confirmAccountChange: bool = False


class AccountOut(Out):
    email: str
    team: str | None
    dropletLimit: int | None


class ConnectionOut(Out):
    id: str
    name: str
    description: str | None
    version: int
    projectId: str
    orgId: str
    createdAt: str | None
    updatedAt: str | None
    isPlatformManagedCredentials: bool
    credentialsHash: str
    app: str
    method: str
    credentials: dict
    status: str
    account: AccountOut


class ConnectionEnvelope(Out):
    appConnection: ConnectionOut


class ConnectionsEnvelope(Out):
    appConnections: list[ConnectionOut]


class AppOut(Out):
    id: str
    name: str


class AppsEnvelope(Out):
    apps: list[AppOut]
