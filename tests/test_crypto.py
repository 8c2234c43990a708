import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from devpilot import crypto
from devpilot.crypto import DecryptionError, decrypt, encrypt
from devpilot.models import Secret
from tests.settings import DEVPILOT_ENCRYPTION_KEYS as KEYS

NEW, OLD = KEYS


def make_secret(workspace, key, value):
    env = workspace.environments.get(slug="dev")
    return Secret.objects.create(workspace=workspace, environment=env, folder=env.folders.get(path="/"), key=key, value=value)


def test_round_trip():
    sealed = encrypt("s3cr3t value\nwith lines", "devpilot.secret:1:value")
    assert "s3cr3t" not in sealed
    assert decrypt(sealed, "devpilot.secret:1:value") == "s3cr3t value\nwith lines"


def test_each_encryption_uses_a_fresh_nonce():
    assert encrypt("same", "ad") != encrypt("same", "ad")


def test_wrong_associated_data_fails():
    sealed = encrypt("value", "devpilot.secret:1:value")
    with pytest.raises(DecryptionError):
        decrypt(sealed, "devpilot.secret:2:value")


def test_a_ciphertext_copied_to_another_row_does_not_decrypt(workspace):
    first = make_secret(workspace, "A", "alpha")
    second = make_secret(workspace, "B", "beta")
    Secret.objects.filter(pk=second.pk).update(value_ciphertext=first.value_ciphertext)
    with pytest.raises(DecryptionError):
        Secret.objects.get(pk=second.pk).value


def test_a_raw_database_read_shows_no_plaintext(workspace):
    make_secret(workspace, "DATABASE_PASSWORD", "hunter2-plaintext")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM devpilot_secret")
        assert "hunter2-plaintext" not in repr(cursor.fetchall())


def test_an_unknown_key_fails_closed(workspace):
    secret = make_secret(workspace, "A", "alpha")
    with override_settings(DEVPILOT_ENCRYPTION_KEYS=[crypto.generate_key()]):
        with pytest.raises(DecryptionError, match="not in DEVPILOT_ENCRYPTION_KEYS"):
            Secret.objects.get(pk=secret.pk).value


def test_tampered_ciphertext_fails():
    sealed = encrypt("value", "ad")
    tampered = sealed[:-6] + ("AAAAAA" if not sealed.endswith("AAAAAA") else "BBBBBB")
    with pytest.raises(DecryptionError):
        decrypt(tampered, "ad")


def test_rotation_re_encrypts_every_row_under_the_newest_key(workspace):
    with override_settings(DEVPILOT_ENCRYPTION_KEYS=[OLD]):
        secrets = [make_secret(workspace, f"K{i}", f"value-{i}") for i in range(3)]
        old_id = crypto.load_keys()[0][0]
    with override_settings(DEVPILOT_ENCRYPTION_KEYS=[NEW, OLD]):
        call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))
        new_id = crypto.load_keys()[0][0]
    assert {crypto.key_id_of(c) for c in Secret.objects.values_list("value_ciphertext", flat=True)} == {new_id}
    assert old_id != new_id
    with override_settings(DEVPILOT_ENCRYPTION_KEYS=[NEW]):  # the old key can now be dropped
        assert [Secret.objects.get(pk=s.pk).value for s in secrets] == ["value-0", "value-1", "value-2"]


def test_badly_formed_keys_are_a_configuration_error():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured):
        crypto.load_keys(["too-short"])
