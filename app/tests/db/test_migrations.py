"""What the migrations set up beyond the models: checked on the migrated test database."""

from __future__ import annotations

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

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
