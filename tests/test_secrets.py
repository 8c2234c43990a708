import pytest
from django.db import transaction

from devpilot import secrets
from devpilot.models import AuditEvent, Secret, SecretVersion
from devpilot.signals import secrets_changed


@pytest.fixture
def events(db):
    received = []

    def receiver(sender, **kwargs):
        received.append((kwargs["environment_id"], kwargs["path"]))

    secrets_changed.connect(receiver)
    yield received
    secrets_changed.disconnect(receiver)


def test_create_stores_the_value_encrypted_and_keeps_it_exact(dev):
    value = "line one\n  line two with 'quotes' and \"doubles\"\n\ttab\n"
    secret = secrets.create_secret(dev, "/", "MULTI", value, "a comment")
    stored = Secret.objects.get(pk=secret.pk)
    assert stored.value == value
    assert "line one" not in stored.value_ciphertext
    assert secrets.read_folder(dev, "/") == {"MULTI": value}


@pytest.mark.parametrize("key", ["1ABC", "WITH-DASH", "has space", "", "dots.x", "é"])
def test_invalid_keys_are_refused(dev, key):
    with pytest.raises(secrets.SecretsError):
        secrets.create_secret(dev, "/", key, "v")
    assert not Secret.objects.exists()


def test_keys_are_unique_within_a_folder_but_not_across_folders(dev):
    secrets.create_folder(dev, "/", "app-secrets")
    secrets.create_secret(dev, "/", "TOKEN", "a")
    secrets.create_secret(dev, "/app-secrets", "TOKEN", "b")
    with pytest.raises(secrets.SecretsError, match="already exists"):
        secrets.create_secret(dev, "/", "TOKEN", "c")


def test_values_over_64_kib_are_refused(dev):
    with pytest.raises(secrets.SecretsError, match="64 KiB"):
        secrets.create_secret(dev, "/", "BIG", "x" * (64 * 1024 + 1))
    secrets.create_secret(dev, "/", "EXACT", "x" * (64 * 1024))


@pytest.mark.parametrize("path,expected", [("/", "/"), ("/app-secrets/", "/app-secrets"), ("a/b_c", "/a/b_c")])
def test_paths_are_normalised(path, expected):
    assert secrets.normalize_path(path) == expected


@pytest.mark.parametrize("path", ["/a b", "/a//b", "/../x", "/a/é", "/a.b"])
def test_bad_paths_are_a_clear_error(path):
    with pytest.raises(secrets.SecretsError, match="not a valid path"):
        secrets.normalize_path(path)


def test_every_write_emits_exactly_one_event_after_commit(dev, events, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        secret = secrets.create_secret(dev, "/", "A", "1")
    assert events == [(dev.pk, "/")]
    with django_capture_on_commit_callbacks(execute=True):
        secrets.update_secret(secret, value="2")
    with django_capture_on_commit_callbacks(execute=True):
        secrets.bulk_import(dev, "/", {f"K{i}": str(i) for i in range(500)}, overwrite=True)
    with django_capture_on_commit_callbacks(execute=True):
        secrets.restore_version(secret, secret.versions.get(version=1))
    with django_capture_on_commit_callbacks(execute=True):
        secrets.delete_secret(Secret.objects.get(key="A"))
    assert len(events) == 5
    assert set(events) == {(dev.pk, "/")}


def test_no_event_when_the_transaction_rolls_back(dev, events, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                secrets.create_secret(dev, "/", "A", "1")
                raise RuntimeError
    assert events == []
    assert not Secret.objects.exists()


def test_folder_rename_and_delete_emit_one_event_per_touched_path(dev, events, django_capture_on_commit_callbacks):
    secrets.create_folder(dev, "/", "app")
    secrets.create_folder(dev, "/app", "api")
    secrets.create_secret(dev, "/app/api", "K", "v")
    with django_capture_on_commit_callbacks(execute=True):
        secrets.rename_folder(dev.folders.get(path="/app"), "web")
    assert sorted(p for _, p in events) == ["/app/api", "/web/api"]
    assert secrets.read_folder(dev, "/web/api") == {"K": "v"}
    events.clear()
    with pytest.raises(secrets.SecretsError, match="confirm"):
        secrets.delete_folder(dev.folders.get(path="/web"))
    with django_capture_on_commit_callbacks(execute=True):
        secrets.delete_folder(dev.folders.get(path="/web"), confirmed=True)
    assert [p for _, p in events] == ["/web/api"]
    assert list(dev.folders.values_list("path", flat=True)) == ["/"]


def test_a_stale_edit_is_refused_and_loses_nothing(dev, owner, make_member, workspace):
    secret = secrets.create_secret(dev, "/", "A", "original", user=owner)
    seen_by_both = secret.version
    secrets.update_secret(secret, value="first save", expected_version=seen_by_both, user=owner)
    with pytest.raises(secrets.StaleVersion, match="changed by owner@example.com"):
        secrets.update_secret(secret, value="second save", expected_version=seen_by_both)
    assert Secret.objects.get(pk=secret.pk).value == "first save"


def test_history_keeps_every_version_and_restores_an_old_one(dev, owner):
    secret = secrets.create_secret(dev, "/", "A", "v1", user=owner)
    secrets.update_secret(secret, value="v2", user=owner)
    restored = secrets.restore_version(secret, secret.versions.get(version=1), user=owner)
    assert restored.value == "v1" and restored.version == 3
    assert [v.value for v in SecretVersion.objects.filter(secret=secret).order_by("version")] == ["v1", "v2", "v1"]


def test_bulk_import_skips_or_overwrites_existing_keys(dev):
    secrets.create_secret(dev, "/", "KEEP", "old")
    skipped = secrets.bulk_import(dev, "/", {"KEEP": "new", "FRESH": "1"}, overwrite=False)
    assert (skipped.created, skipped.skipped) == (["FRESH"], ["KEEP"])
    assert secrets.read_folder(dev, "/")["KEEP"] == "old"
    overwritten = secrets.bulk_import(dev, "/", {"KEEP": "new", "FRESH": "1"}, overwrite=True)
    assert (overwritten.updated, overwritten.unchanged) == (["KEEP"], ["FRESH"])
    assert secrets.read_folder(dev, "/") == {"FRESH": "1", "KEEP": "new"}


def test_environments_are_managed_and_slugs_unique(workspace):
    env = secrets.create_environment(workspace, "QA", "qa")
    assert env.folders.filter(path="/").exists()
    with pytest.raises(secrets.SecretsError, match="already exists"):
        secrets.create_environment(workspace, "Other QA", "qa")
    secrets.rename_environment(env, "Quality", "quality")
    secrets.create_secret(env, "/", "A", "1")
    secrets.delete_environment(env)
    assert not workspace.environments.filter(slug="quality").exists()


def test_writes_are_audited_without_values(dev, owner):
    secrets.create_secret(dev, "/", "API_KEY", "super-secret-value", user=owner)
    event = AuditEvent.objects.get(action="secret.created")
    assert event.target_label == "dev:/:API_KEY"
    assert "super-secret-value" not in repr(AuditEvent.objects.values())
