"""What valid input to a secret sync is: one definition for the wizard, the edit page, the API and tasks."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from connections import digitalocean
from devpilot.schemas import Description, EnvironmentSlug, FolderPath, Id, Out, QueryBool, Strict, rule
from syncs import keyschema

# Lowercase slugs, unique in the workspace (Infisical's rule); upper case is accepted and lowered.
SyncName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[-a-zA-Z0-9_]+$"), AfterValidator(str.lower)]
KeySchema = Annotated[str, Field(max_length=255), rule(keyschema.validate)]
# App Platform app ids are UUIDs: nothing else may reach a DigitalOcean path.
AppId = Annotated[str, Field(pattern=digitalocean.UUID_PATTERN)]
Component = Annotated[str, Field(max_length=64, pattern=r"^([a-z0-9][a-z0-9-]*)?$")]
VariableType = Literal["SECRET", "GENERAL"]
Scope = Literal["RUN_AND_BUILD_TIME", "RUN_TIME", "BUILD_TIME"]


class SyncOptions(Strict):
    initialSyncBehavior: Literal["overwrite-destination"] = "overwrite-destination"
    keySchema: KeySchema | None = None
    autoSyncEnabled: bool = None  # type: ignore[assignment]
    disableSecretDeletion: bool = None  # type: ignore[assignment]


class DestinationConfig(Strict):
    appId: AppId
    appName: Annotated[str, Field(max_length=255)] = ""
    component: Component | None = None
    variableType: VariableType = "SECRET"
    scope: Scope = "RUN_AND_BUILD_TIME"


class SyncCreate(Strict):
    name: SyncName
    # Optional: a token belongs to one workspace, which is the default. Null is refused.
    projectId: Id = None  # type: ignore[assignment]
    description: Description | None = None
    connectionId: Id
    environment: EnvironmentSlug
    secretPath: FolderPath = "/"
    # Infisical's spellings of "auto-sync on": isAutoSyncEnabled, isEnabled, syncOptions.autoSyncEnabled.
    isAutoSyncEnabled: bool = None  # type: ignore[assignment]
    isEnabled: bool = None  # type: ignore[assignment]
    syncOptions: SyncOptions = Field(default_factory=SyncOptions)
    destinationConfig: DestinationConfig


class SyncUpdate(Strict):
    name: SyncName = None  # type: ignore[assignment]
    description: Description | None = None
    connectionId: Id = None  # type: ignore[assignment]
    environment: EnvironmentSlug = None  # type: ignore[assignment]
    secretPath: FolderPath = None  # type: ignore[assignment]
    isAutoSyncEnabled: bool = None  # type: ignore[assignment]
    isEnabled: bool = None  # type: ignore[assignment]
    syncOptions: SyncOptions = None  # type: ignore[assignment]
    destinationConfig: DestinationConfig = None  # type: ignore[assignment]


class SyncDeleteQuery(Strict):
    removeSecrets: QueryBool = False


def auto_sync(body: SyncCreate | SyncUpdate) -> bool | None:
    """The first auto-sync spelling the caller used, or None when it sent none."""
    options = body.syncOptions
    for value in (body.isAutoSyncEnabled, options.autoSyncEnabled if options else None, body.isEnabled):
        if value is not None:
            return value
    return None


class NamedRef(Out):
    id: str
    name: str
    app: str | None = None


class EnvironmentRef(Out):
    id: str
    slug: str
    name: str


class FolderRef(Out):
    id: str
    path: str


class SyncOptionsOut(Out):
    initialSyncBehavior: str
    keySchema: str | None
    autoSyncEnabled: bool
    disableSecretDeletion: bool


class DestinationOut(Out):
    appId: str
    appName: str
    component: str | None
    variableType: str
    scope: str


class SyncOut(Out):
    id: str
    name: str
    description: str | None
    isEnabled: bool
    isAutoSyncEnabled: bool
    version: int
    folderId: str
    connectionId: str | None
    createdAt: str | None
    updatedAt: str | None
    syncStatus: str | None
    lastSyncJobId: str | None
    lastSyncMessage: str | None
    lastSyncedAt: str | None
    removeStatus: str | None
    lastRemoveJobId: str | None
    lastRemoveMessage: str | None
    lastRemovedAt: str | None
    deleteAfterRemoval: bool
    syncOptions: SyncOptionsOut
    projectId: str
    connection: NamedRef | None
    environment: EnvironmentRef
    folder: FolderRef
    destination: str
    destinationConfig: DestinationOut
    driftKeys: list[str]


class SyncEnvelope(Out):
    secretSync: SyncOut


class SyncsEnvelope(Out):
    secretSyncs: list[SyncOut]


# --- Destination "devpilot-server": a file written by the agent on one server or on every server with a tag --

ServerTag = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9:._-]{0,63}$")]
PosixName = Annotated[str, Field(max_length=32, pattern=r"^$|^[a-z_][a-z0-9_.-]{0,31}$")]


class ServerDestinationConfig(Strict):
    """One of serverId or tag; the file's path (default /etc/devpilot/<name>.env), format, owner, group, mode,
    and a reload command from the server's allowed list (checked by the service against the servers)."""

    serverId: Id = None  # type: ignore[assignment]
    tag: ServerTag | None = None
    filePath: Annotated[str, Field(min_length=2, max_length=512)] | None = None
    format: Literal["dotenv", "json", "yaml"] = "dotenv"
    owner: PosixName = ""
    group: PosixName = ""
    mode: Annotated[str, Field(pattern=r"^0?[0-7]{3}$")] = "0600"
    reloadCommand: Annotated[str, Field(max_length=255)] = ""


class ServerSyncCreate(Strict):
    name: SyncName
    projectId: Id = None  # type: ignore[assignment]
    description: Description | None = None
    environment: EnvironmentSlug
    secretPath: FolderPath = "/"
    isAutoSyncEnabled: bool = None  # type: ignore[assignment]
    isEnabled: bool = None  # type: ignore[assignment]
    syncOptions: SyncOptions = Field(default_factory=SyncOptions)
    destinationConfig: ServerDestinationConfig


class ServerSyncUpdate(Strict):
    name: SyncName = None  # type: ignore[assignment]
    description: Description | None = None
    environment: EnvironmentSlug = None  # type: ignore[assignment]
    secretPath: FolderPath = None  # type: ignore[assignment]
    isAutoSyncEnabled: bool = None  # type: ignore[assignment]
    isEnabled: bool = None  # type: ignore[assignment]
    syncOptions: SyncOptions = None  # type: ignore[assignment]
    destinationConfig: ServerDestinationConfig = None  # type: ignore[assignment]


class ServerDestinationOut(Out):
    serverId: str | None
    tag: str | None
    filePath: str
    format: str
    owner: str
    group: str
    mode: str
    reloadCommand: str | None


class ServerDeliveryOut(Out):
    serverId: str
    serverName: str
    state: Literal["pending", "sent", "applied", "failed", "leaving"]  # leaving: no longer a target, keys still there
    message: str
    isTarget: bool
    versionApplied: int | None
    appliedAt: str | None
    fileSha256: str | None
    reloadExitStatus: int | None


class ServerSyncOut(Out):
    id: str
    name: str
    description: str | None
    isEnabled: bool
    isAutoSyncEnabled: bool
    version: int
    folderId: str
    createdAt: str | None
    updatedAt: str | None
    syncStatus: str | None
    lastSyncMessage: str | None
    lastSyncedAt: str | None
    removeStatus: str | None
    lastRemoveMessage: str | None
    lastRemovedAt: str | None
    syncOptions: SyncOptionsOut
    projectId: str
    environment: EnvironmentRef
    folder: FolderRef
    destination: str
    destinationConfig: ServerDestinationOut
    servers: list[ServerDeliveryOut]


class ServerSyncEnvelope(Out):
    secretSync: ServerSyncOut


class ServerSyncsEnvelope(Out):
    secretSyncs: list[ServerSyncOut]
