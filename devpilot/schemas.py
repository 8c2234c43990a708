"""What valid input is, once, for every edge: pages, wizards, the JSON API and tasks.

Each operation has one schema. Schemas are strict (healthchecks' rule): the string
"false" is not a boolean, 5 is not a path, null is not a value, and unknown fields are
refused rather than ignored. Field rules reuse the service layer's validators, so a
page form and an API call can never disagree about a key, a path or a port.

`parse(Schema, data)` turns pydantic's errors into one `Invalid` whose details name
each field as the caller spelled it (`secrets[0].secretValue`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from devpilot.errors import DevpilotError, FieldError, Invalid

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base of every input schema: no coercion, no unknown fields, no NUL characters in text."""

    model_config = ConfigDict(strict=True, extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL cannot store NUL in text; refused here, it can never reach a row or DigitalOcean.
        if _has_nul(value):
            raise PydanticCustomError("invalid", "Text may not contain NUL (\\u0000) characters.")
        return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False


class Out(BaseModel):
    """Base of every output schema (documentation and a check that answers keep their shape)."""

    model_config = ConfigDict(extra="forbid")


def rule(check: Callable[[Any], Any]) -> AfterValidator:
    """A service-layer validator (raising a DevpilotError) as a pydantic field rule."""

    def run(value: Any) -> Any:
        try:
            return check(value)
        except DevpilotError as e:
            raise PydanticCustomError("invalid", e.message) from None

    return AfterValidator(run)


def _query_bool(value: Any) -> Any:
    """Query strings carry text: only 'true' and 'false' are booleans, nothing else is guessed."""
    if isinstance(value, str):
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise PydanticCustomError("bool_parsing", "Use true or false.")
    return value


# Ids arrive as text in JSON and URLs; anything that is not a UUID is refused.
Id = Annotated[UUID, Field(strict=False)]
QueryBool = Annotated[bool, BeforeValidator(_query_bool)]
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"\S")]
Description = Annotated[str, Field(max_length=2000)]
EnvironmentSlug = Annotated[str, Field(min_length=1, max_length=64)]
RoleName = Literal["owner", "admin", "member", "viewer"]


def message_for(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "This field is required."
    if kind == "extra_forbidden":
        return "Unknown field; it is not part of this operation."
    if kind in ("string_type", "bool_type", "int_type", "list_type", "dict_type", "model_type") and \
            error.get("input", "") is None:
        return "This field cannot be null."
    return str(error["msg"])


def field_name(location: tuple[int | str, ...]) -> str:
    name = ""
    for part in location:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def invalid(errors: list[Any], location: Callable[[tuple], tuple] = tuple) -> Invalid:
    """pydantic's errors as one Invalid naming each field; `location` trims where the caller's input sat."""
    details: list[FieldError] = [
        {"field": field_name(location(tuple(e.get("loc", ())))), "message": message_for(e)} for e in errors
    ]
    first = details[0]
    return Invalid(f"{first['field']}: {first['message']}", details=details)


def parse(schema: type[M], data: Any) -> M:
    """Validate `data` against `schema` or raise Invalid naming every bad field."""
    try:
        return schema.model_validate(data)
    except ValidationError as e:
        raise invalid(e.errors()) from None


class ErrorDetail(Out):
    field: str
    message: str


class ErrorOut(Out):
    statusCode: int
    message: str
    error: str
    details: list[ErrorDetail] | None = None


# --- Workspaces ---------------------------------------------------------------------------


class WorkspaceOut(Out):
    id: UUID
    slug: str
    name: str
    createdAt: str | None


class WorkspacesOut(Out):
    workspaces: list[WorkspaceOut]


# --- Secrets (Infisical's raw secrets API v3) ----------------------------------------------

from devpilot import secrets as _secrets  # noqa: E402  (the rules live in the service layer)


def _query_int(value: Any) -> Any:
    if isinstance(value, str):
        if not value.isdigit():
            raise PydanticCustomError("int_parsing", "Use a whole number.")
        return int(value)
    return value


QueryInt = Annotated[int, BeforeValidator(_query_int), Field(ge=1, le=2**31 - 1)]
SecretKey = Annotated[str, rule(_secrets.validate_key)]
SecretValue = Annotated[str, rule(_secrets.validate_value)]
SecretComment = Annotated[str, Field(max_length=10_000)]
FolderPath = Annotated[str, Field(max_length=500), rule(_secrets.normalize_path)]
SecretType = Literal["shared"]  # personal overrides are not part of Devpilot


WorkspaceSlug = Annotated[str, Field(min_length=1, max_length=60)]


class WorkspaceRef(Strict):
    """Which workspace: Infisical's clients name it workspaceId or projectId (newer clients), or by slug
    (workspaceSlug in queries, projectSlug in the Python SDK's bodies). It must be the token's own."""

    workspaceId: Id | None = None
    projectId: Id | None = None
    workspaceSlug: WorkspaceSlug | None = None
    projectSlug: WorkspaceSlug | None = None

    def workspace_ref(self) -> tuple[Any, str | None]:
        return self.workspaceId or self.projectId, self.workspaceSlug or self.projectSlug


class SecretScope(WorkspaceRef):
    """Where a secret lives: a workspace, an environment and a folder path."""

    environment: EnvironmentSlug
    secretPath: FolderPath = "/"


class SecretListQuery(SecretScope):
    recursive: QueryBool = False
    # Devpilot has no tags: a tag filter matches no secret.
    tagSlugs: Annotated[str, Field(max_length=1000)] = ""
    viewSecretValue: QueryBool = True
    # Infisical's server defaults: references are expanded and imports listed only when asked (its SDKs ask).
    expandSecretReferences: QueryBool = False
    includeImports: QueryBool = False
    include_imports: QueryBool = False


class SecretGetQuery(SecretScope):
    # The Node SDK repeats the path's secret name in the query; it must be the same name.
    secretName: Annotated[str, Field(min_length=1, max_length=255)] = None  # type: ignore[assignment]
    version: QueryInt | None = None
    type: SecretType = "shared"
    viewSecretValue: QueryBool = True
    expandSecretReferences: QueryBool = False
    includeImports: QueryBool = False
    include_imports: QueryBool = False


class _SecretWrite(SecretScope):
    type: SecretType = "shared"
    skipMultilineEncoding: bool = False
    # Tags and reminders are not part of Devpilot: clients may send them empty, never with content.
    tagIds: list[Annotated[str, Field(max_length=0)]] = Field(default_factory=list, max_length=0)
    secretReminderNote: None = None
    secretReminderRepeatDays: None = None
    # Nor is secret metadata (the Python SDK names it secretMetadata, the Node SDK metadata): empty only.
    secretMetadata: list[dict[str, str]] = Field(default_factory=list, max_length=0)
    metadata: Annotated[dict[str, str], Field(max_length=0)] = Field(default_factory=dict)


class SecretCreate(_SecretWrite):
    secretValue: SecretValue
    secretComment: SecretComment = ""


class SecretUpdate(_SecretWrite):
    # Absent means unchanged; null is refused (it is not a value).
    secretValue: SecretValue = None  # type: ignore[assignment]
    secretComment: SecretComment = None  # type: ignore[assignment]
    newSecretName: SecretKey = None  # type: ignore[assignment]
    version: int = Field(default=None, ge=1)  # type: ignore[assignment]


class SecretDelete(SecretScope):
    type: SecretType = "shared"


class BatchCreateItem(Strict):
    secretKey: SecretKey
    secretValue: SecretValue
    secretComment: SecretComment = ""
    skipMultilineEncoding: bool = False


class BatchUpdateItem(Strict):
    secretKey: SecretKey
    secretValue: SecretValue = None  # type: ignore[assignment]
    secretComment: SecretComment = None  # type: ignore[assignment]
    skipMultilineEncoding: bool = False


class BatchDeleteItem(Strict):
    secretKey: SecretKey
    type: SecretType = "shared"


def _distinct_keys(items: list) -> list:
    keys = [item.secretKey for item in items]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise PydanticCustomError("invalid", f"Each secretKey may appear once; repeated: {', '.join(duplicates)}.")
    return items


class BatchCreate(SecretScope):
    secrets: Annotated[list[BatchCreateItem], Field(min_length=1, max_length=1000), AfterValidator(_distinct_keys)]


class BatchUpdate(SecretScope):
    secrets: Annotated[list[BatchUpdateItem], Field(min_length=1, max_length=1000), AfterValidator(_distinct_keys)]


class BatchDelete(SecretScope):
    secrets: Annotated[list[BatchDeleteItem], Field(min_length=1, max_length=1000), AfterValidator(_distinct_keys)]


class SecretOut(Out):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str
    legacy_id: str = Field(alias="_id")
    workspace: str
    workspaceId: str
    environment: str
    folderId: str
    secretPath: str
    secretKey: str
    secretValue: str | None
    secretValueHidden: bool
    secretComment: str
    version: int
    type: str
    tags: list[str]
    skipMultilineEncoding: bool
    secretReminderNote: None
    secretReminderRepeatDays: None
    secretMetadata: list[dict[str, str]]
    isRotatedSecret: bool
    rotationId: None
    createdAt: str | None
    updatedAt: str | None


class SecretEnvelope(Out):
    secret: SecretOut


class ImportedSecretsOut(Out):
    """One import of the listed folder, as Infisical lists it with include_imports (in import order)."""

    secretPath: str
    environment: str
    folderId: str
    secrets: list[SecretOut]


class SecretsEnvelope(Out):
    secrets: list[SecretOut]
    imports: list[ImportedSecretsOut] | None = None


# --- Secret imports (Infisical's /api/v1/secret-imports) ---


class ImportSource(Strict):
    environment: EnvironmentSlug
    path: FolderPath = "/"


class ImportChange(Strict):
    environment: EnvironmentSlug = None  # type: ignore[assignment]
    path: FolderPath = None  # type: ignore[assignment]
    position: int = Field(default=None, ge=1, le=10_000)  # type: ignore[assignment]


class SecretImportScope(WorkspaceRef):
    """The importing folder: an environment and a path (Infisical's `path`; `directory` from older clients)."""

    environment: EnvironmentSlug
    path: FolderPath = "/"


class SecretImportCreate(SecretImportScope):
    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)

    source: ImportSource = Field(alias="import")
    isReplication: Literal[False] = False


class SecretImportUpdate(SecretImportScope):
    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)

    change: ImportChange = Field(alias="import")


class ImportEnvOut(Out):
    id: str
    name: str
    slug: str


class SecretImportOut(Out):
    id: str
    version: int
    importPath: str
    importEnv: ImportEnvOut
    position: int
    folderId: str
    isReplication: bool
    isReplicationSuccess: bool | None
    replicationStatus: str | None
    lastReplicated: str | None
    isReserved: bool
    createdAt: str | None
    updatedAt: str | None


class SecretImportEnvelope(Out):
    message: str
    secretImport: SecretImportOut


class SecretImportsEnvelope(Out):
    message: str
    secretImports: list[SecretImportOut]


# --- Folders and environments (Infisical's /v1 and /v2 folders, /v1/workspace/{id}/environments) ---

FolderName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


class FolderScope(WorkspaceRef):
    environment: EnvironmentSlug
    # Where: `path` (v2 and newer v1 clients) or `directory` (older v1 clients); `/` when neither is sent.
    path: FolderPath = None  # type: ignore[assignment]
    directory: FolderPath = None  # type: ignore[assignment]

    def parent(self) -> str:
        return self.path or self.directory or "/"


class FolderListQuery(FolderScope):
    recursive: QueryBool = False
    lastSecretModified: Annotated[str, Field(max_length=40)] = None  # type: ignore[assignment]


class FolderCreate(FolderScope):
    name: FolderName
    description: Description = None  # type: ignore[assignment]


class FolderUpdate(FolderScope):
    name: FolderName
    description: Description = None  # type: ignore[assignment]


class FolderDelete(FolderScope):
    forceDelete: bool = False


class EnvironmentRefOut(Out):
    envId: str
    envName: str
    envSlug: str


class FolderOut(Out):
    id: str
    name: str
    envId: str
    description: str | None
    createdAt: str | None
    updatedAt: str | None
    parentId: str | None
    isReserved: bool
    lastSecretModified: str | None
    version: int
    path: str
    relativePath: str
    projectId: str
    environment: EnvironmentRefOut


class FolderEnvelope(Out):
    folder: FolderOut


class FoldersEnvelope(Out):
    folders: list[FolderOut]


class EnvironmentCreate(Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    slug: EnvironmentSlug
    position: int = Field(default=None, ge=1, le=1000)  # type: ignore[assignment]
    projectId: Id = None  # type: ignore[assignment]
    workspaceId: Id = None  # type: ignore[assignment]


class EnvironmentOut(Out):
    id: str
    name: str
    slug: str
    position: int
    projectId: str
    createdAt: str | None
    updatedAt: str | None


class EnvironmentCreated(Out):
    message: str
    workspace: str
    environment: EnvironmentOut


class EnvironmentsEnvelope(Out):
    environments: list[EnvironmentOut]


# --- Machine identities and universal auth ---------------------------------------------------

IdentityRole = Literal["admin", "member", "viewer"]
Seconds = Annotated[int, Field(ge=0, le=315_360_000)]
IpRange = Annotated[str, Field(min_length=1, max_length=50)]
Credential = Annotated[str, Field(max_length=200)]


class UniversalAuthLogin(Strict):
    # Absent credentials are a 401 (as every unauthenticated call), not a 400.
    clientId: Credential = None  # type: ignore[assignment]
    clientSecret: Credential = None  # type: ignore[assignment]


class AccessTokenIn(Strict):
    accessToken: Credential = None  # type: ignore[assignment]


class AccessTokenOut(Out):
    accessToken: str
    expiresIn: int
    accessTokenMaxTTL: int
    tokenType: Literal["Bearer"]


class MessageOut(Out):
    message: str


class IdentityCreate(Strict):
    name: Name
    role: IdentityRole = "viewer"
    projectId: Id = None  # type: ignore[assignment]
    organizationId: Id = None  # type: ignore[assignment]
    accessTokenTTL: Seconds = 2_592_000
    accessTokenMaxTTL: Seconds = 2_592_000
    trustedIps: list[IpRange] = Field(default_factory=list, max_length=50)


class IdentityUpdate(Strict):
    name: Name = None  # type: ignore[assignment]
    role: IdentityRole = None  # type: ignore[assignment]
    accessTokenTTL: Seconds = None  # type: ignore[assignment]
    accessTokenMaxTTL: Seconds = None  # type: ignore[assignment]
    trustedIps: list[IpRange] = Field(default=None, max_length=50)  # type: ignore[assignment]


class IdentityOut(Out):
    id: str
    name: str
    role: str
    effectiveRole: str
    projectId: str
    clientId: str
    authMethods: list[str]
    accessTokenTTL: int
    accessTokenMaxTTL: int
    trustedIps: list[str]
    createdBy: str | None
    createdAt: str | None
    updatedAt: str | None


class IdentityEnvelope(Out):
    identity: IdentityOut


class IdentitiesEnvelope(Out):
    identities: list[IdentityOut]


class TrustedIpOut(Out):
    ipAddress: str
    type: Literal["ipv4", "ipv6"]
    prefix: int


class UniversalAuthOut(Out):
    id: str
    identityId: str
    clientId: str
    accessTokenTTL: int
    accessTokenMaxTTL: int
    accessTokenNumUsesLimit: int
    clientSecretTrustedIps: list[TrustedIpOut]
    accessTokenTrustedIps: list[TrustedIpOut]
    createdAt: str | None
    updatedAt: str | None


class UniversalAuthEnvelope(Out):
    identityUniversalAuth: UniversalAuthOut


class UniversalAuthUpdate(Strict):
    accessTokenTTL: Seconds = None  # type: ignore[assignment]
    accessTokenMaxTTL: Seconds = None  # type: ignore[assignment]
    trustedIps: list[IpRange] = Field(default=None, max_length=50)  # type: ignore[assignment]


class ClientSecretCreate(Strict):
    description: Annotated[str, Field(max_length=200)] = ""
    numUsesLimit: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    ttl: Seconds = 0


class ClientSecretOut(Out):
    id: str
    identityId: str
    description: str
    clientSecretPrefix: str
    clientSecretNumUses: int
    clientSecretNumUsesLimit: int
    clientSecretTTL: int
    isClientSecretRevoked: bool
    expiresAt: str | None
    lastUsedAt: str | None
    createdAt: str | None
    updatedAt: str | None


class ClientSecretCreated(Out):
    clientSecret: str
    clientSecretData: ClientSecretOut


class ClientSecretEnvelope(Out):
    clientSecretData: ClientSecretOut


class ClientSecretsEnvelope(Out):
    clientSecretData: list[ClientSecretOut]


# --- Folder snapshots (Infisical's secret snapshots) and Devpilot's compare and promote ----------

QueryOffset = Annotated[int, BeforeValidator(_query_int), Field(ge=0, le=2**31 - 1)]
QueryLimit = Annotated[int, BeforeValidator(_query_int), Field(ge=1, le=100)]


class SnapshotCountQuery(Strict):
    environment: EnvironmentSlug
    path: FolderPath = "/"


class SnapshotListQuery(SnapshotCountQuery):
    offset: QueryOffset = 0
    limit: QueryLimit = 20


class SnapshotOut(Out):
    """Infisical's SecretSnapshotsSchema, and what Devpilot adds: the number, kind, actor and summary."""

    id: str
    envId: str
    folderId: str
    parentFolderId: str | None
    createdAt: str | None
    updatedAt: str | None
    number: int
    kind: str
    actor: str
    summary: str


class SnapshotsEnvelope(Out):
    secretSnapshots: list[SnapshotOut]


class CountOut(Out):
    count: int


class SnapshotEnvironmentOut(Out):
    id: str
    slug: str
    name: str


class SnapshotSecretOut(Out):
    """A secret version of a snapshot, as Infisical answers it (value null when hidden)."""

    id: str
    secretId: str | None
    version: int
    secretKey: str
    secretValue: str | None
    secretValueHidden: bool
    secretComment: str
    secretReminderNote: None
    secretReminderRepeatDays: None
    skipMultilineEncoding: bool
    tags: list[str]
    isRotatedSecret: bool
    createdAt: str | None
    updatedAt: str | None


class FolderVersionOut(Out):
    id: str
    name: str


class SnapshotDetailOut(Out):
    id: str
    projectId: str
    environment: SnapshotEnvironmentOut
    secretVersions: list[SnapshotSecretOut]
    folderVersion: list[FolderVersionOut]
    createdAt: str | None
    updatedAt: str | None
    number: int
    kind: str
    actor: str
    summary: str


class SnapshotEnvelope(Out):
    secretSnapshot: SnapshotDetailOut


class SnapshotRolledBack(Out):
    secretSnapshot: SnapshotOut


class CompareQuery(WorkspaceRef):
    path: FolderPath = "/"
    differencesOnly: QueryBool = False


class CompareCellOut(Out):
    environment: str
    present: bool
    # Which distinct value of the row the environment holds (1, 2…); null when absent or not compared.
    valueGroup: int | None


class CompareRowOut(Out):
    key: str
    differs: bool
    environments: list[CompareCellOut]


class CompareOut(Out):
    path: str
    valuesCompared: bool
    environments: list[SnapshotEnvironmentOut]
    keys: list[CompareRowOut]


class PromoteIn(WorkspaceRef):
    path: FolderPath = "/"
    sourceEnvironment: EnvironmentSlug
    targetEnvironment: EnvironmentSlug
    keys: Annotated[list[SecretKey], Field(min_length=1, max_length=1000)]
    dryRun: bool = False


class PromoteOut(Out):
    path: str
    sourceEnvironment: str
    targetEnvironment: str
    created: list[str]
    overwritten: list[str]
    unchanged: list[str]
    folderCreated: bool
    dryRun: bool
