from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.config import LogFormat, Settings, load_settings
from app.tests.conftest import make_settings


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


# The shape of a real Mandrill webhook key: 22 base64url characters.
REAL_KEY = "ntynTMaFpM_octE5R1DKAw"


def test_production_refuses_placeholder_secrets() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None, environment="production")
    text = str(info.value)
    assert "SECRET_KEY" in text and "MAILCHIMP_WEBHOOK_SECRET" in text
    ok = Settings(
        _env_file=None,
        environment="production",
        secret_key="x" * 40,
        mailchimp_webhook_secret=REAL_KEY,
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


# --- the audience webhook's path token ------------------------------------------------------

GOOD_TOKEN = "Zq3-x_Y.9~aB7cD8eF9gH0iJ"  # 24 characters, every kind the alphabet allows


@pytest.mark.parametrize(
    "token",
    [
        "abc/defghijklmnopqrstuvwxyz",  # a `/`: registered with Mailchimp, then 404 for ever
        "abc?defghijklmnopqrstuvwxyz",
        "abc#defghijklmnopqrstuvwxyz",
        "abc%2Fdefghijklmnopqrstuvwx",
        "abc defghijklmnopqrstuvwxyz",
        "abc+defghijklmnopqrstuvwxyz",
        "abcdéfghijklmnopqrstuvwxyz",
        "abcdefghijklmnopqrstuvw\n",
    ],
)
def test_an_audience_token_outside_the_url_safe_alphabet_is_refused(token: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None, mailchimp_audience_webhook_token=token)
    text = str(info.value)
    assert "MAILCHIMP_AUDIENCE_WEBHOOK_TOKEN" in text and "A-Z a-z 0-9 - _ . ~" in text
    assert token not in text and token.strip()[:10] not in text


def test_an_audience_token_shorter_than_24_characters_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None, mailchimp_audience_webhook_token=GOOD_TOKEN[:23])
    assert "MAILCHIMP_AUDIENCE_WEBHOOK_TOKEN must be at least 24 characters" in str(info.value)
    assert GOOD_TOKEN[:23] not in str(info.value)


@pytest.mark.parametrize("environment", ["development", "test", "production"])
def test_url_safe_audience_tokens_are_accepted(environment: str) -> None:
    production = {"secret_key": "x" * 40, "mailchimp_webhook_secret": REAL_KEY}
    for token in [GOOD_TOKEN, secrets.token_urlsafe(32), "audience-token-for-tests"]:
        settings = Settings(
            _env_file=None,
            environment=environment,
            mailchimp_audience_webhook_token=token,
            **production,
        )
        assert settings.mailchimp_audience_webhook_token is not None
        assert settings.mailchimp_audience_webhook_token.get_secret_value() == token
    # Unset or empty: the endpoint is off (404), not a configuration error.
    assert Settings(_env_file=None).mailchimp_audience_webhook_token is None
    assert Settings(_env_file=None, mailchimp_audience_webhook_token="") is not None


def test_start_up_with_a_bad_audience_token_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout's
    monkeypatch.setenv("MAILCHIMP_AUDIENCE_WEBHOOK_TOKEN", "s3cret/with-a-slash-inside-it")
    with pytest.raises(SystemExit) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("Kave cannot start, the configuration is invalid:")
    assert "MAILCHIMP_AUDIENCE_WEBHOOK_TOKEN may hold only the URL-safe characters" in message
    assert "s3cret" not in message


def test_the_documented_token_recipe_and_the_suites_token_are_accepted() -> None:
    readme = (Path(__file__).resolve().parents[3] / "docs" / "audience-webhooks.md").read_text()
    assert 'python -c "import secrets; print(secrets.token_urlsafe(32))"' in readme
    assert len(secrets.token_urlsafe(32)) >= 24
    assert make_settings("sqlite+aiosqlite://", Path("unused")).mailchimp_audience_webhook_token


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("", ""),
        ("*", "*"),
        (" * ", "*"),
        ("10.0.0.5", "10.0.0.5"),
        ("10.0.0.5, 172.16.0.0/12,::1", "10.0.0.5,172.16.0.0/12,::1"),
    ],
)
def test_forwarded_allow_ips_takes_addresses_and_networks(value: str, kept: str) -> None:
    assert Settings(_env_file=None, forwarded_allow_ips=value).forwarded_allow_ips == kept


def test_forwarded_allow_ips_trusts_none_by_default() -> None:
    assert Settings(_env_file=None).forwarded_allow_ips == ""


@pytest.mark.parametrize("value", ["proxy.internal", "10.0.0.5/8", "*, 10.0.0.5", "10.0.0.300"])
def test_forwarded_allow_ips_refuses_what_uvicorn_would_silently_ignore(value: str) -> None:
    # uvicorn keeps an entry it cannot parse as a literal that no peer address ever equals.
    with pytest.raises(ValidationError, match="not an IP address or network"):
        Settings(_env_file=None, forwarded_allow_ips=value)


# --- weak webhook keys ----------------------------------------------------------------------


@pytest.mark.parametrize("environment", ["production", "test"])
@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ("test-webhook", "the key is 'test-webhook', Mandrill's public URL-verification key"),
        (f"{REAL_KEY},test-webhook", "key 2 of 2 is 'test-webhook'"),
        ("k", "the key is shorter than 16 characters"),
        (f"x7Qp,{REAL_KEY}", "key 1 of 2 is shorter than 16 characters"),
        ("0123456789abcde", "the key is shorter than 16 characters"),
    ],
)
def test_weak_webhook_keys_are_refused_outside_development(
    environment: str, keys: str, problem: str
) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(
            _env_file=None,
            environment=environment,
            secret_key="x" * 40,
            mailchimp_webhook_secret=keys,
        )
    text = str(info.value)
    assert f"refusing to start in {environment}" in text
    assert f"MAILCHIMP_WEBHOOK_SECRET: {problem}" in text
    assert REAL_KEY not in text and "x7Qp" not in text and "abcde" not in text


@pytest.mark.parametrize("environment", ["production", "test"])
def test_webhook_keys_of_16_characters_or_more_are_accepted(environment: str) -> None:
    for keys in [
        REAL_KEY,
        "0123456789abcdef",
        f"{REAL_KEY}, test-webhook-key-1",
        "test-webhook-2026",
    ]:
        settings = Settings(
            _env_file=None,
            environment=environment,
            secret_key="x" * 40,
            mailchimp_webhook_secret=keys,
        )
        assert len(settings.webhook_keys) == keys.count(",") + 1


def test_development_takes_any_webhook_key() -> None:
    # A first run may point Mailchimp's URL check at a laptop with whatever key it has.
    for keys in ["test-webhook", "k", ""]:
        Settings(_env_file=None, environment="development", mailchimp_webhook_secret=keys)


def test_start_up_in_production_with_the_url_check_key_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout's
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("MAILCHIMP_WEBHOOK_SECRET", "test-webhook")
    with pytest.raises(SystemExit) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("Kave cannot start, the configuration is invalid:")
    assert "MAILCHIMP_WEBHOOK_SECRET: the key is 'test-webhook'" in message


def test_development_gets_a_webhook_key_and_a_url_from_host_and_port() -> None:
    from app.core.config import DEVELOPMENT_WEBHOOK_KEY

    settings = Settings(_env_file=None, port=8123)
    assert settings.webhook_keys == (DEVELOPMENT_WEBHOOK_KEY.encode(),)
    assert settings.uses_development_webhook_key
    assert settings.mailchimp_webhook_url == "http://127.0.0.1:8123/api/v1/webhooks/mailchimp"
    assert Settings(_env_file=None, host="::1").mailchimp_webhook_url.startswith(
        "http://[::1]:8000/"
    )
    # Set values win.
    own = Settings(
        _env_file=None,
        mailchimp_webhook_secret=REAL_KEY,
        mailchimp_webhook_url="https://k.example/w",
    )
    assert own.webhook_keys == (REAL_KEY.encode(),) and not own.uses_development_webhook_key
    assert own.mailchimp_webhook_url == "https://k.example/w"


@pytest.mark.parametrize("environment", ["production", "test"])
def test_the_development_key_is_never_a_key_outside_development(environment: str) -> None:
    from app.core.config import DEVELOPMENT_WEBHOOK_KEY

    with pytest.raises(ValidationError) as info:
        Settings(
            _env_file=None,
            environment=environment,
            secret_key="x" * 40,
            mailchimp_webhook_secret=DEVELOPMENT_WEBHOOK_KEY,
        )
    assert "Kave's public development key" in str(info.value)
    if environment == "production":  # and an empty key is still refused, not replaced
        with pytest.raises(ValidationError, match="MAILCHIMP_WEBHOOK_SECRET must hold"):
            Settings(_env_file=None, environment=environment, secret_key="x" * 40)


@pytest.mark.parametrize("url", ["memory://", "redis://127.0.0.1:6379", "rediss://r:6380/2"])
def test_rate_limit_storages_with_a_client_are_accepted(url: str) -> None:
    assert Settings(_env_file=None, rate_limit_storage_url=url).rate_limit_storage_url == url


@pytest.mark.parametrize("url", ["memcached://m:11211", "redis", "localhost:6379", ""])
def test_other_rate_limit_storages_are_refused_with_what_works(url: str) -> None:
    with pytest.raises(ValidationError, match="must be memory:// or a Redis URL"):
        Settings(_env_file=None, rate_limit_storage_url=url)


def test_an_empty_variable_is_an_unset_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # docker-compose.yml passes every setting, empty when neither .env nor the shell sets it.
    for name in ("LOG_LEVEL", "PORT", "RATE_LIMIT_STORAGE_URL", "LOG_FORMAT", "S3_REGION"):
        monkeypatch.setenv(name, "")
    settings = Settings(_env_file=None)
    assert settings.log_level == "INFO" and settings.port == 8000
    assert settings.rate_limit_storage_url == "memory://" and settings.log_format is None
