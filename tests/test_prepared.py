"""Queries compiled once (devpilot/prepared.py): the same rows as their querysets, one query a call, and a
query that cannot be prepared refused on its first call, not answered wrongly."""

import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devpilot import access, api, identities, overview, secret_api, secret_views, secrets
from devpilot.models import ApiToken, Folder, IdentityAccessToken, Role, Secret, hash_token
from devpilot.prepared import PreparedQuery
from devpilot.tokens import create_api_token
from syncs.models import SyncStatus
from tests.isolation import a_server, a_sync


def comparable(rows):
    """Rows as plain data: a model instance by its fields, its annotations and what select_related loaded."""
    def plain(row):
        if isinstance(row, tuple):
            return row
        related = {name: plain(obj) for name, obj in row._state.fields_cache.items()}
        return type(row), {k: v for k, v in vars(row).items() if k != "_state"}, related
    return [plain(row) for row in rows]


@pytest.fixture
def place(workspace, owner, make_member):
    """A workspace with folders, secrets, tokens and a second member: something for every prepared query."""
    dev = workspace.environments.get(slug="dev")
    secrets.create_folder(dev, "/", "app")
    secrets.create_folder(dev, "/app", "worker")
    secrets.create_folder(dev, "/", "other")
    for key in ("B", "A", "C"):
        secrets.create_secret(dev, "/app", key, f"value-{key}", user=owner)
    member = make_member(workspace, Role.MEMBER)
    create_api_token(workspace, "first", role=Role.MEMBER, created_by=member)
    create_api_token(workspace, "second", role=Role.ADMIN, created_by=owner)
    identity = identities.create_identity(workspace, "ci", Role.MEMBER, created_by=member)
    identities.login(identity.client_id, identities.add_client_secret(identity)[1])
    a_server(workspace, owner)
    a_sync(workspace, owner).__class__.objects.update(sync_status=SyncStatus.FAILED)
    return dev, member


def every_prepared_query(workspace, dev, member):
    """(prepared query, arguments) for each one Devpilot keeps, with arguments that find rows."""
    app = Folder.objects.get(environment=dev, path="/app")
    token = ApiToken.objects.get(name="first")
    access_token = IdentityAccessToken.objects.get()
    return [
        (api._TOKEN_BY_HASH, {"token_hash": token.token_hash}),
        (identities._ACCESS_TOKEN_BY_HASH, {"token_hash": access_token.token_hash}),
        (secret_api._FOLDER_ROWS, {"workspace_id": workspace.pk, "environment": "dev", "path": "/app"}),
        (access.MEMBERSHIPS_OF, {"user_id": member.pk}),
        (secret_views._ENVIRONMENTS_OF, {"workspace_id": workspace.pk}),
        (secret_views._FOLDER_AND_CHILDREN, {"environment_id": dev.pk, "path": "/app", "children": "^/app/[^/]+$"}),
        (secret_views._FIRST_PAGE, {"folder_id": app.pk}),
        *[(query, {"workspace_id": workspace.pk}) for query in (
            overview.ENVIRONMENTS_WITH_SECRET_COUNTS, overview.CONNECTIONS, overview.SYNC_COUNTS,
            overview.LIVE_SERVER_COUNTS, overview.FAILING_SYNCS, overview.RECENT_EVENTS)],
    ]


def test_every_prepared_query_gives_its_querysets_rows_in_one_query(workspace, place):
    dev, member = place
    for prepared, arguments in every_prepared_query(workspace, dev, member):
        expected = comparable(prepared._build(**arguments))
        assert expected, f"{prepared._build} found nothing: the comparison would prove nothing"
        with CaptureQueriesContext(connection) as queries:
            rows = prepared(**arguments)
            answer = comparable(rows)  # reading what select_related loaded runs no further query
        assert answer == expected
        assert len(queries) == 1, [q["sql"] for q in queries]


def test_each_call_runs_with_its_own_arguments(workspace, place):
    first, second = ApiToken.objects.get(name="first"), ApiToken.objects.get(name="second")
    assert [t.name for t in api._TOKEN_BY_HASH(token_hash=first.token_hash)] == ["first"]
    assert [t.name for t in api._TOKEN_BY_HASH(token_hash=second.token_hash)] == ["second"]
    assert api._TOKEN_BY_HASH(token_hash=hash_token("dvp_no-such-token")) == []
    # The token's annotation (its creator's current role) is read afresh, not kept from an earlier call.
    second.created_by.memberships.update(role=Role.VIEWER)
    assert api._TOKEN_BY_HASH(token_hash=second.token_hash)[0].creator_role == Role.VIEWER


def test_uuid_arguments_may_be_given_as_text(workspace, place):
    dev, _ = place
    by_uuid = secret_api._FOLDER_ROWS(workspace_id=workspace.pk, environment="dev", path="/app")
    assert secret_api._FOLDER_ROWS(workspace_id=str(workspace.pk), environment="dev", path="/app") == by_uuid
    assert [row[3] for row in by_uuid] == ["A", "B", "C"]  # values_list rows, in the queryset's order


def test_an_argument_a_lookup_rewrites_is_refused(db):
    contains = PreparedQuery(lambda key: Secret.objects.filter(key__icontains=key), key=str)
    with pytest.raises(ImproperlyConfigured, match="argument key does not reach its SQL unchanged"):
        contains(key="A")


def test_arguments_must_be_the_declared_ones(db):
    by_folder = PreparedQuery(lambda folder_id: Secret.objects.filter(folder_id=folder_id), folder_id=uuid.UUID)
    with pytest.raises(TypeError, match="Expected the arguments"):
        by_folder(folder=uuid.uuid4())
    with pytest.raises(TypeError, match="cannot be None"):  # the queryset would say IS NULL, another query
        by_folder(folder_id=None)
    with pytest.raises(ImproperlyConfigured, match="use str, int or UUID"):
        PreparedQuery(lambda when: Secret.objects.filter(created_at=when), when=float)(when=1.0)
