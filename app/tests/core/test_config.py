from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.config import LogFormat, Settings


def test_defaults_are_the_embedded_service() -> None:
    settings = Settings(_env_file=None)
    assert settings.database_url == "sqlite+aiosqlite:///./kave.db"
    assert str(settings.storage_local_path) == "data/attachments"
    assert settings.max_body_bytes == 96 * 1024 * 1024
    assert settings.effective_log_format is LogFormat.CONSOLE


def test_several_webhook_keys_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILCHIMP_WEBHOOK_SECRET", "old-key, new-key")
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example,https://b.example")
    settings = Settings(_env_file=None)
    assert settings.webhook_keys == (b"old-key", b"new-key")
    assert settings.cors_origins == ["https://a.example", "https://b.example"]


def test_production_refuses_placeholder_secrets() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None, environment="production")
    text = str(info.value)
    assert "SECRET_KEY" in text and "MAILCHIMP_WEBHOOK_SECRET" in text
    ok = Settings(
        _env_file=None,
        environment="production",
        secret_key="x" * 40,
        mailchimp_webhook_secret="real-key",
    )
    assert ok.effective_log_format is LogFormat.JSON


def test_start_up_in_production_without_secrets_fails_with_a_clear_message() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import app.main"],
        capture_output=True,
        text=True,
        env={"ENVIRONMENT": "production", "PATH": "/usr/bin:/bin"},
        timeout=180,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode != 0
    assert "Kave cannot start, the configuration is invalid" in done.stderr
    assert "SECRET_KEY" in done.stderr
    assert "Traceback" not in done.stderr
