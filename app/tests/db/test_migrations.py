"""What the migrations set up beyond the models: checked on the migrated test database."""

from __future__ import annotations

import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from alembic import command
from app.health import expected_schema_revision
from app.tests.conftest import ROOT


def test_one_head_and_readiness_expects_it() -> None:
    heads = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_heads()
    assert len(heads) == 1
    assert expected_schema_revision() == heads[0]


async def test_payloads_use_lz4_on_postgresql(session: AsyncSession, is_postgres: bool) -> None:
    if not is_postgres:
        pytest.skip("TOAST compression is a PostgreSQL setting")
    available = await session.scalar(
        text(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
    )
    if not available:
        pytest.skip("this PostgreSQL was built without lz4")
    rows = await session.execute(
        text(
            "SELECT attrelid::regclass::text, attname, attcompression::text FROM pg_attribute "
            "WHERE (attrelid, attname) IN (('webhook_events'::regclass, 'payload'), "
            "('emails'::regclass, 'text_body'), ('emails'::regclass, 'html_body'))"
        )
    )
    assert {(t, c): m for t, c, m in rows.all()} == {
        ("webhook_events", "payload"): "l",
        ("emails", "text_body"): "l",
        ("emails", "html_body"): "l",
    }


def test_users_from_before_0004_get_token_version_0(tmp_path: Path) -> None:
    # A database at 0003 with a user in it, upgraded: the existing row gets version 0, what a
    # token without `ver` counts as, so the upgrade signs nobody out.
    path = tmp_path / "before-0004.db"
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = f"sqlite+aiosqlite:///{path}"
    config.attributes["configure_logging"] = False
    with ThreadPoolExecutor(1) as pool:  # env.py runs its own event loop
        pool.submit(command.upgrade, config, "0003").result()
        with closing(sqlite3.connect(path)) as db, db:
            db.execute(
                "INSERT INTO users (id, email, hashed_password, scopes, is_active, created_at) "
                "VALUES (?, 'old@example.com', 'x', '[]', 1, '2026-11-30 12:00:00.000000')",
                (uuid.uuid4().hex,),
            )
        pool.submit(command.upgrade, config, "head").result()
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT email, token_version FROM users").fetchall() == [
            ("old@example.com", 0)
        ]
