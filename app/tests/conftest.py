"""The test harness: a real database (PostgreSQL or SQLite) migrated by Alembic, the ASGI app
with its lifespan running, and an httpx client on it.

Database under test: TEST_DATABASE_URL when set; else, when a Docker engine answers,
docker-compose.test.yml through pytest-docker; else an embedded SQLite file.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.config import Config
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from alembic import command
from app.core.config import Settings
from app.db.base import Base
from app.main import create_app
from app.tests.support import WEBHOOK_KEY, WEBHOOK_URL

pytest_plugins = ["app.tests.fixtures.s3", "app.tests.fixtures.api"]

ROOT = Path(__file__).resolve().parents[2]


def _docker_engine_answers() -> bool:
    if not (shutil.which("docker") and (shutil.which("docker-compose") or _has_compose_v2())):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _has_compose_v2() -> bool:
    try:
        done = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.fixture(scope="session")
def docker_compose_file() -> list[str]:
    # KAVE_TEST_COMPOSE_OVERRIDE: an extra compose file, e.g. to use locally built images
    # where a registry cannot be reached.
    files = [str(ROOT / "docker-compose.test.yml")]
    override = os.environ.get("KAVE_TEST_COMPOSE_OVERRIDE")
    return [*files, override] if override else files


@pytest.fixture(scope="session")
def docker_compose_command() -> str:
    return "docker compose" if _has_compose_v2() else "docker-compose"


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    # Compose v1 has no `--wait` (it prints its usage and exits 0): readiness is polled below.
    return ["up --build --wait"] if _has_compose_v2() else ["up --build -d"]


def _run_async(coro_factory: Callable[[], Any]) -> Any:
    # Alembic's env.py runs its own event loop: keep it off the test loop's thread.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(coro_factory())).result()


async def _postgres_ready(url: str) -> bool:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    if os.environ.get("KAVE_TEST_DOCKER") != "0" and _docker_engine_answers():
        services = request.getfixturevalue("docker_services")
        port = services.port_for("db", 5432)
        url = f"postgresql+asyncpg://kave:kave@127.0.0.1:{port}/kave_test"
        services.wait_until_responsive(
            check=lambda: _run_async(lambda: _postgres_ready(url)), timeout=90, pause=1
        )
        return url
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'kave-test.db'}"


async def _reset_schema(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(scope="session")
def migrated_database(database_url: str) -> str:
    """The schema under test comes from the Alembic migrations, never from create_all."""
    _run_async(lambda: _reset_schema(database_url))
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logging"] = False
    with ThreadPoolExecutor(1) as pool:
        pool.submit(command.upgrade, config, "head").result()
    return database_url


@pytest.fixture(scope="session")
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "storage_backend": "local",
        "storage_local_path": tmp_path / "blobs",
        "mailchimp_webhook_url": WEBHOOK_URL,
        "mailchimp_webhook_secret": WEBHOOK_KEY,
        "mailchimp_audience_webhook_token": "audience-token-for-tests",
        "secret_key": "test-secret-key-that-is-long-enough-for-hs256",
        "log_level": "WARNING",
        "log_format": "console",
        "retry_base_seconds": 0.05,
        "retry_max_seconds": 0.2,
        "recovery_interval_seconds": 0.1,
        "event_lease_seconds": 30,
        # In the app's own loop: the suite drives processing in-process (the topology with
        # worker processes has its own tests, in app/tests/faults/test_worker_processes.py).
        "worker_processes": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module (or parametrize) to change the app's settings."""
    return {}


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    migrated_database: str,
    tmp_path: Path,
    settings_overrides: dict[str, Any],
) -> Settings:
    overrides = dict(settings_overrides)
    if overrides.get("storage_backend") == "s3" and "s3_endpoint_url" not in overrides:
        from app.tests.fixtures.s3 import unique_bucket_name

        overrides.update(
            s3_endpoint_url=request.getfixturevalue("s3_endpoint_url"),
            s3_bucket=unique_bucket_name(),
            s3_access_key_id=os.environ.get("TEST_S3_ACCESS_KEY_ID", "testing"),
            s3_secret_access_key=os.environ.get("TEST_S3_SECRET_ACCESS_KEY", "testing"),
        )
    return make_settings(migrated_database, tmp_path, **overrides)


async def _clear_tables(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())
    await engine.dispose()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    try:
        async with application.router.lifespan_context(application):
            yield application
    finally:
        await _clear_tables(settings.database_url)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://kave.test") as c:
        yield c


@pytest.fixture
async def session(app: FastAPI) -> AsyncIterator[AsyncSession]:
    async with app.state.services.session_factory() as s:
        yield s


@pytest.fixture
def unique() -> Callable[[], str]:
    return lambda: uuid.uuid4().hex
