"""`python -m app.cli` in a subprocess against the test database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.processing.models import WebhookEvent
from app.tests.fixtures.api import PASSWORD, MakeUser, TokenFor, bearer
from app.tests.support import post_events, wait_until
from app.users.models import User

ROOT = Path(__file__).resolve().parents[3]
SECRET = "cli password: never on the command line"


def run_cli(
    database_url: str, tmp_path: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "SECRET_", "MAILCHIMP_", "STORAGE_"))
    }
    env |= {
        "DATABASE_URL": database_url,
        "ENVIRONMENT": "test",
        "PYTHONPATH": str(ROOT),
        "STORAGE_LOCAL_PATH": str(tmp_path / "blobs"),
        "RECOVERY_INTERVAL_SECONDS": "0.1",
    }
    argv = [sys.executable, "-m", "app.cli", *args]
    assert not any(SECRET in arg for arg in argv)
    return subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # no stray .env file is read
        timeout=120,
        check=False,
    )


@pytest.fixture
def cli(settings: Settings, tmp_path: Path) -> Any:
    async def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        done = await asyncio.to_thread(run_cli, settings.database_url, tmp_path, *args, stdin=stdin)
        assert SECRET not in done.stdout and SECRET not in done.stderr
        return done

    return run


async def users_by_email(session: AsyncSession) -> dict[str, User]:
    session.expunge_all()
    users = {u.email: u for u in (await session.scalars(select(User))).all()}
    await session.commit()
    return users


async def test_create_user_from_stdin_with_all_scopes(
    cli: Any, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    done = await cli(
        "create-user", "--email", "Ops@Example.com", "--password-stdin", stdin=SECRET + "\n"
    )
    assert done.returncode == 0, done.stderr
    assert "No --scope given: granting all scopes." in done.stdout
    assert "Created user ops@example.com" in done.stdout
    user = (await users_by_email(session))["ops@example.com"]
    assert user.scopes == [
        "emails:read",
        "emails:delete",
        "events:read",
        "events:replay",
        "users:admin",
        "destinations:admin",
    ]
    assert user.hashed_password.startswith("$argon2id$")
    token = await client.post(
        "/api/v1/auth/token", data={"username": "ops@example.com", "password": SECRET}
    )
    assert token.status_code == 200

    again = await cli("create-user", "--email", "ops@example.com", "--password-stdin", stdin=SECRET)
    assert again.returncode == 1
    assert "already exists" in again.stderr


async def test_create_user_with_scopes(cli: Any, session: AsyncSession) -> None:
    done = await cli(
        "create-user",
        "--email",
        "reader@example.com",
        "--scope",
        "events:read",
        "--scope",
        "emails:read",
        "--password-stdin",
        stdin=SECRET,
    )
    assert done.returncode == 0, done.stderr
    assert "granting all scopes" not in done.stdout
    user = (await users_by_email(session))["reader@example.com"]
    assert user.scopes == ["emails:read", "events:read"]


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (["--password-stdin"], "too short\n", 1, "at least 12 characters"),
        (["--password-stdin"], "", 1, "at least 12 characters"),
        ([], SECRET, 2, "--password-stdin"),  # no terminal to prompt on
        (["--scope", "emails:write", "--password-stdin"], SECRET, 2, "emails:write"),
    ],
)
async def test_create_user_refusals(
    cli: Any, session: AsyncSession, args: list[str], stdin: str, code: int, message: str
) -> None:
    done = await cli("create-user", "--email", "x@example.com", *args, stdin=stdin)
    assert done.returncode == code
    assert message in done.stderr
    assert await users_by_email(session) == {}


async def test_bad_email_is_a_usage_error(cli: Any) -> None:
    done = await cli("create-user", "--email", "nobody", "--password-stdin", stdin=SECRET)
    assert done.returncode == 2
    assert "name@example.com" in done.stderr


async def test_list_and_disable_users(
    cli: Any,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    settings: Settings,
    session: AsyncSession,
) -> None:
    empty = await cli("list-users")
    assert empty.returncode == 0
    assert "No users yet" in empty.stdout

    admin = await make_user(email="admin@example.com", scopes=["users:admin"])
    await make_user(email="reader@example.com", scopes=["emails:read"])
    listing = await cli("list-users")
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["id", "email", "active", "created", "(UTC)", "scopes"]
    assert any("admin@example.com" in line and "users:admin" in line for line in lines)
    assert any("reader@example.com" in line and "emails:read" in line for line in lines)

    headers = bearer(admin, settings)
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 200
    done = await cli("disable-user", "--email", "ADMIN@example.com")
    assert done.returncode == 0, done.stderr
    assert "Disabled user admin@example.com" in done.stdout
    assert "no active user has the users:admin scope" in done.stdout
    assert (await users_by_email(session))["admin@example.com"].is_active is False
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 401

    again = await cli("disable-user", "--email", "admin@example.com")
    assert "already disabled" in again.stdout
    unknown = await cli("disable-user", "--email", "ghost@example.com")
    assert unknown.returncode == 1
    assert "no user with email ghost@example.com" in unknown.stderr


async def test_disable_user_ends_tokens_even_when_enabled_again(
    cli: Any, client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    admin = bearer(await make_user(scopes=["users:admin"]), settings)
    operator = await make_user(email="operator@example.com", scopes=["emails:read"])
    signed_in = await client.post(
        "/api/v1/auth/token", data={"username": operator.email, "password": PASSWORD}
    )
    old = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    assert (await client.get("/api/v1/auth/me", headers=old)).status_code == 200

    done = await cli("disable-user", "--email", "operator@example.com")
    assert done.returncode == 0, done.stderr
    assert (await client.get("/api/v1/auth/me", headers=old)).status_code == 401
    enabled = await client.patch(
        f"/api/v1/users/{operator.id}", json={"is_active": True}, headers=admin
    )
    assert enabled.status_code == 200
    refused = await client.get("/api/v1/auth/me", headers=old)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "not_authenticated"
    again = await client.post(
        "/api/v1/auth/token", data={"username": operator.email, "password": PASSWORD}
    )
    assert again.status_code == 200
    new = {"Authorization": f"Bearer {again.json()['access_token']}"}
    assert (await client.get("/api/v1/auth/me", headers=new)).status_code == 200


async def test_first_run_hint(cli: Any, make_user: MakeUser, tmp_path: Path) -> None:
    hint = await cli("first-run-hint")
    assert hint.returncode == 0
    assert "create-user --email" in hint.stdout
    await make_user()
    quiet = await cli("first-run-hint")
    assert quiet.returncode == 0
    assert quiet.stdout == ""


async def test_first_run_hint_on_a_database_without_tables(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    done = await asyncio.to_thread(run_cli, url, tmp_path, "first-run-hint")
    assert done.returncode == 0
    assert "create-user --email" in done.stdout


async def test_replay_failed_events_is_picked_up_by_the_running_server(
    cli: Any, client: httpx.AsyncClient, session: AsyncSession, token_for: TokenFor
) -> None:
    headers = await token_for("events:read")
    await post_events(client, ["not an object", "neither is this"])

    async def failed() -> list[dict[str, Any]]:
        response = await client.get("/api/v1/events", headers=headers, params={"status": "failed"})
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def both_failed() -> bool:
        return len(await failed()) == 2

    await wait_until(both_failed)
    before = {e["id"]: datetime.fromisoformat(e["failed_at"]) for e in await failed()}

    none = await cli("replay", "--status", "failed", "--kind", "inbound")
    assert none.returncode == 0, none.stderr
    assert "Requeued 0 failed inbound event(s)." in none.stdout

    # Not-an-object events are kind `invalid`: they can only fail again, so only on request.
    skipped = await cli("replay", "--status", "failed")
    assert "Requeued 0 failed event(s)." in skipped.stdout
    assert "Skipped 2 of kind invalid" in skipped.stdout

    one = await cli("replay", "--status", "failed", "--limit", "1", "--include-invalid")
    assert one.returncode == 0, one.stderr
    assert "Requeued 1 failed event(s)." in one.stdout
    assert "RECOVERY_INTERVAL_SECONDS" in one.stdout

    async def one_failed_again() -> bool:
        now = {e["id"]: datetime.fromisoformat(e["failed_at"]) for e in await failed()}
        return len(now) == 2 and sum(now[i] > before[i] for i in before) == 1

    await wait_until(one_failed_again)
    session.expunge_all()
    attempts = (await session.scalars(select(WebhookEvent.attempts))).all()
    await session.commit()
    assert sorted(attempts) == [1, 1]

    bad = await cli("replay", "--status", "received")
    assert bad.returncode == 2


async def test_recompute_fields_for_stored_mail(
    cli: Any, client: httpx.AsyncClient, session: AsyncSession, app: Any, token_for: TokenFor
) -> None:
    from app.mail.parser import parse_inbound
    from app.tests.emails.factories import add_email, attachment_ids
    from app.tests.mail import agent_messages as m
    from app.tests.mail.builders import inbound

    store = app.state.services.blob_store
    forwarded = m.forwarded_with_pdf()
    raw = forwarded.as_bytes()
    top = parse_inbound(inbound(raw)).attachments[0]
    # Stored before Kave computed the fields: only the top-level attachment has a row.
    old = await add_email(
        session, store, raw=raw, attachments=[(top.filename, top.content_type, top.content)]
    )
    [kept_id] = await attachment_ids(session, old.id)
    reply = await add_email(
        session, store, raw=m.message(text="Yes, Friday.\n\n> Friday?\n").as_bytes()
    )
    bounce = await add_email(session, store, raw=m.bounce_report("lost@example.net"))
    # No raw message kept: the columns are read instead.
    columns_only = await add_email(
        session, None, text_body="Noted.\n\nOn Mon, Alice wrote:\n> Note this.\n"
    )

    done = await cli("recompute-fields")
    assert done.returncode == 0, done.stderr
    assert "Recomputed 4 email(s)." in done.stdout

    headers = await token_for("emails:read")
    detail = (await client.get(f"/api/v1/emails/{old.id}", headers=headers)).json()
    assert detail["category"] == "normal" and detail["thread_id"] is not None
    names = [(a["filename"], a["id"] == str(kept_id)) for a in detail["attachments"]]
    assert names == [
        ("Fwd: Signed contract.eml", True),  # the existing row keeps its id
        ("Signed contract.eml", False),
        ("contract.pdf", False),
        ("totals.csv", False),
    ]
    pdf = detail["attachments"][2]
    assert pdf["parent_id"] == detail["attachments"][1]["id"]
    assert (await client.get(pdf["content_url"], headers=headers)).content == m.PDF
    got = (await client.get(f"/api/v1/emails/{reply.id}", headers=headers)).json()
    assert got["reply_text"] == "Yes, Friday."
    got = (await client.get(f"/api/v1/emails/{bounce.id}", headers=headers)).json()
    assert (got["category"], got["bounce"]["recipient"]) == ("bounce", "lost@example.net")
    got = (await client.get(f"/api/v1/emails/{columns_only.id}", headers=headers)).json()
    assert (got["reply_text"], got["category"]) == ("Noted.", "normal")

    # Everything has its fields now: a second run finds nothing to do, --all does it again.
    assert "Recomputed 0 email(s)." in (await cli("recompute-fields")).stdout
    again = await cli("recompute-fields", "--all")
    assert "Recomputed 4 email(s)." in again.stdout
    detail = (await client.get(f"/api/v1/emails/{old.id}", headers=headers)).json()
    assert len(detail["attachments"]) == 4  # nothing added twice


_REPORT_PRIORITY = (
    "import os; from app.cli.worker import lower_priority; lower_priority(7); "
    "print(os.nice(0)); print((open('/proc/self/autogroup').read().split() or ['-'])[-1])"
)


def _own_autogroup_nice() -> str:
    # Empty when this session has no autogroup of its own (e.g. a daemon's child that never
    # called setsid, as on CI): then '-', which the child reports the same way.
    return (Path("/proc/self/autogroup").read_text().split() or ["-"])[-1]


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="Linux autogroups only")
def test_a_worker_leading_its_session_nices_its_autogroup_too() -> None:
    # As the app starts its child: a session of its own, whose autogroup is niced with it.
    led = subprocess.run(
        [sys.executable, "-c", _REPORT_PRIORITY],
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,
    )
    assert led.stdout.split() == ["7", "7"]
    # Run from a shared session (a terminal's), it leaves the session's autogroup alone.
    before = _own_autogroup_nice()
    shared = subprocess.run(
        [sys.executable, "-c", _REPORT_PRIORITY], capture_output=True, text=True, check=True
    )
    assert shared.stdout.split() == ["7", before]
    assert _own_autogroup_nice() == before
