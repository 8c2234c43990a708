import os
import subprocess
import sys
from pathlib import Path

from devpilot import crypto

ROOT = Path(__file__).resolve().parent.parent


def manage(*args, **env):
    environment = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DEVPILOT_HTTPS", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    environment.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True)


def test_the_default_settings_are_production_settings():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING",
        SECRET_KEY="x" * 30 + "-a-long-and-random-enough-production-key",
        DEVPILOT_ENCRYPTION_KEYS=crypto.generate_key(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_settings_refuse_to_start_without_keys():
    result = manage("check", SECRET_KEY="x", DEVPILOT_ENCRYPTION_KEYS="")
    assert result.returncode != 0


def test_every_model_change_has_a_migration():
    result = manage("makemigrations", "--check", "--dry-run", SECRET_KEY="x" * 50, DEVPILOT_ENCRYPTION_KEYS=crypto.generate_key())
    assert result.returncode == 0, result.stdout + result.stderr
