"""`.env.example` and docker-compose.yml name every setting Kave reads, and compose is safe."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from app.core.config import Settings

ROOT = Path(__file__).resolve().parents[3]
SETTINGS = {(field.alias or name).upper() for name, field in Settings.model_fields.items()}
# Not for a container: where a local run listens, and the image's own data path.
NOT_IN_COMPOSE = {"HOST", "PORT", "STORAGE_LOCAL_PATH"}


def test_env_example_lists_every_setting_and_only_settings() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    kave_part = text.split("# ---- docker-compose.yml only", 1)[0]
    listed = set(re.findall(r"^# ([A-Z][A-Z0-9_]*)=", kave_part, flags=re.MULTILINE))
    assert SETTINGS - listed == set()
    assert listed - SETTINGS == set()
    # Everything is commented out: copying it changes nothing until a line is uncommented.
    assert not re.search(r"^[A-Z]", text, flags=re.MULTILINE)


def test_env_example_values_are_valid_settings() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8").split("# ---- docker-compose", 1)[0]
    values = dict(re.findall(r"^# ([A-Z][A-Z0-9_]*)=(.*)$", text, flags=re.MULTILINE))
    # As Kave reads the file uncommented (an empty value is unset).
    settings = Settings(_env_file=None, **{k.lower(): v for k, v in values.items() if v})
    assert settings.port == 8000 and settings.rate_limit_storage_url == "memory://"


def _compose() -> dict[str, object]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_compose_passes_every_setting_and_publishes_on_loopback() -> None:
    compose = _compose()
    environment = compose["x-kave"]["environment"]  # type: ignore[index]
    assert set(environment) == SETTINGS - NOT_IN_COMPOSE
    for name, value in environment.items():
        assert f"${{{name}:-" in str(value) or name == "DATABASE_URL", name
    services = compose["services"]  # type: ignore[index]
    assert services["api"]["ports"] == ["${KAVE_BIND:-127.0.0.1}:${KAVE_PORT:-8000}:8000"]
    assert services["redis"]["profiles"] == ["redis"]
    assert "ports" not in services["redis"]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="no docker-compose")
@pytest.mark.parametrize("env", [{}, {"KAVE_BIND": "0.0.0.0", "LOG_LEVEL": "DEBUG"}])
def test_compose_config_resolves_with_and_without_settings(env: dict[str, str]) -> None:
    done = subprocess.run(
        ["docker-compose", "-f", "docker-compose.yml", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    api = resolved["services"]["api"]
    published = api["ports"][0]
    host_ip = published["host_ip"] if isinstance(published, dict) else published.split(":")[0]
    assert host_ip == env.get("KAVE_BIND", "127.0.0.1")
    assert api["environment"]["LOG_LEVEL"] == env.get("LOG_LEVEL", "")
