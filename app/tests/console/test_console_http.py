"""The console over HTTP (no browser): sign-in rules, session end, CSRF, throttle, error pages,
headers, and the actions' effects on the database."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.emails.repository import EmailFilters, EmailRepository
from app.processing.inbox import EventRepository
from app.tests.fixtures.api import PASSWORD, MakeUser
from app.tests.support import (
    build_message,
    inbound_event,
    png,
    post_events,
    wait_until,
    with_inline_image,
)
from app.users.service import update_user

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
async def browser_like(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # https: the session cookie is Secure outside development, and httpx honours that.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://kave.test") as c:
        yield c


def csrf_of(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, next_path: str = ""
) -> httpx.Response:
    form = await client.get("/console/login")
    return await client.post(
        "/console/login",
        data={"email": email, "password": password, "csrf": csrf_of(form), "next": next_path},
    )


async def test_sign_in_sets_a_strict_session_cookie_and_opens_the_pages(
    browser_like: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    first = await browser_like.get("/console/emails?subject=x")
    assert first.status_code == 303
    assert first.headers["location"] == "/console/login?next=%2Fconsole%2Femails%3Fsubject%3Dx"

    refused = await sign_in(browser_like, user.email, "not the password at all")
    assert refused.status_code == 401
    assert "text/html" in refused.headers["content-type"]
    assert "The email or password is not right" in refused.text

    signed_in = await sign_in(browser_like, user.email.upper(), next_path="/console/events")
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/console/events"
    cookie = next(
        v for k, v in signed_in.headers.multi_items() if v.startswith("kave_console=")
    ).lower()
    for attribute in ("httponly", "samesite=strict", "secure", "path=/console"):
        assert attribute in cookie
    page = await browser_like.get("/console/events")
    assert page.status_code == 200
    assert "Webhook events" in page.text


async def test_sign_in_never_redirects_to_another_host(
    browser_like: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    for target in ("https://evil.example/console/", "//evil.example/console/", "/api/v1/users"):
        answer = await sign_in(browser_like, user.email, next_path=target)
        assert answer.headers["location"] == "/console/"


async def test_disabling_the_user_or_a_new_password_ends_the_session_at_once(
    browser_like: httpx.AsyncClient, make_user: MakeUser, session: AsyncSession
) -> None:
    user = await make_user()
    await sign_in(browser_like, user.email)
    assert (await browser_like.get("/console/")).status_code == 200
    await update_user(session, user_id=user.id, password="another long password 1")
    await session.close()  # hand SQLite's one connection back to the app
    assert (await browser_like.get("/console/")).status_code == 303

    await sign_in(browser_like, user.email, "another long password 1")
    assert (await browser_like.get("/console/")).status_code == 200
    await update_user(session, user_id=user.id, is_active=False, keep_an_admin=False)
    await session.close()
    gone = await browser_like.get("/console/")
    assert gone.status_code == 303
    assert gone.headers["location"].startswith("/console/login")


async def test_forms_without_the_sessions_csrf_token_are_refused(
    browser_like: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    no_cookie = await browser_like.post(
        "/console/login", data={"email": user.email, "password": PASSWORD, "csrf": "x"}
    )
    assert no_cookie.status_code == 403
    assert "security token" in no_cookie.text

    await sign_in(browser_like, user.email)
    page = await browser_like.get("/console/")
    for token in ("", "forged", csrf_of(page)[:-2] + "AA"):
        refused = await browser_like.post("/console/logout", data={"csrf": token})
        assert refused.status_code == 403
        assert "text/html" in refused.headers["content-type"]
    assert (await browser_like.get("/console/")).status_code == 200  # still signed in

    out = await browser_like.post("/console/logout", data={"csrf": csrf_of(page)})
    assert out.status_code == 303
    assert (await browser_like.get("/console/")).status_code == 303


@pytest.mark.parametrize("settings_overrides", [{"token_rate_limit": "2/minute"}])
async def test_the_token_endpoints_throttle_applies_to_the_sign_in_form(
    browser_like: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    for _ in range(2):
        assert (await sign_in(browser_like, user.email, "wrong password here")).status_code == 401
    limited = await sign_in(browser_like, user.email)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert "Too many" in limited.text
    # The API's token endpoint counts the same attempts from this address.
    token = await browser_like.post(
        "/api/v1/auth/token", data={"username": user.email, "password": PASSWORD}
    )
    assert token.status_code == 429


async def test_console_errors_are_pages_and_the_api_keeps_its_envelope(
    browser_like: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user(scopes=["emails:read"])
    await sign_in(browser_like, user.email)
    for path, status in (
        ("/console/nowhere", 404),
        ("/console/emails/not-a-uuid", 404),
        (f"/console/emails/{uuid.uuid4()}", 404),
        ("/console/events", 403),
        ("/console/test-email", 403),
    ):
        answer = await browser_like.get(path)
        assert answer.status_code == status, path
        assert answer.headers["content-type"].startswith("text/html")
        assert "<h1>" in answer.text
    api = await browser_like.get("/api/v1/emails/not-a-uuid")
    assert api.headers["content-type"].startswith("application/json")
    assert "error" in api.json()


async def test_pages_carry_a_strict_csp_and_the_mail_body_its_own(
    browser_like: httpx.AsyncClient, make_user: MakeUser, client: httpx.AsyncClient
) -> None:
    user = await make_user()
    await sign_in(browser_like, user.email)
    page = await browser_like.get("/console/")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert "<svg" in page.text and page.text.count("<rect") == 24

    await post_events(client, [inbound_event(build_message(subject="csp check"))])
    email_id = await _email_id(browser_like, "csp check")
    body = await browser_like.get(f"/console/emails/{email_id}/body")
    body_csp = body.headers["content-security-policy"]
    assert "sandbox" in body_csp and "img-src data:;" in body_csp
    assert "script" not in body_csp
    assert body.headers["x-frame-options"] == "SAMEORIGIN"
    remote = await browser_like.get(f"/console/emails/{email_id}/body?remote_images=true")
    assert "img-src data: https: http:;" in remote.headers["content-security-policy"]


async def test_the_mail_body_shows_its_own_inline_images_and_only_those(
    browser_like: httpx.AsyncClient, make_user: MakeUser, client: httpx.AsyncClient
) -> None:
    user = await make_user(scopes=["emails:read"])
    await sign_in(browser_like, user.email)
    logo = png(3, 2)
    html = (
        '<p>Our logo: <img alt="logo" src="cid:logo.1@kave.test"></p>'
        '<img alt="elsewhere" src="CID:not-in-this-mail@kave.test">'
    )
    message = with_inline_image(
        build_message(subject="inline logo", html=html), logo, "logo.1@kave.test"
    )
    await post_events(client, [inbound_event(message)])
    email_id = await _email_id(browser_like, "inline logo")

    body = await browser_like.get(f"/console/emails/{email_id}/body")
    assert body.status_code == 200
    data_uri = "data:image/png;base64," + base64.b64encode(logo).decode()
    assert f'src="{data_uri}"' in body.text  # the CSP's `img-src data:` lets it in
    assert "cid:logo.1@kave.test" not in body.text
    # A reference to a part the mail does not carry is left as it was: a broken image.
    assert 'src="CID:not-in-this-mail@kave.test"' in body.text


@pytest.mark.parametrize("shown_bytes", [3000])
async def test_inline_images_fill_a_budget_counted_per_reference(
    browser_like: httpx.AsyncClient,
    make_user: MakeUser,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    shown_bytes: int,
) -> None:
    from app.console import message as console_message

    monkeypatch.setattr(console_message, "INLINE_IMAGES_SHOWN_BYTES", shown_bytes)
    user = await make_user(scopes=["emails:read"])
    await sign_in(browser_like, user.email)
    logo = png(20, 20)  # ~100 bytes: its data: URI fits the budget many times, not 1,000
    html = "<p>A lucid:dream.</p>" + '<img src="cid:logo@kave.test">' * 1000
    message = with_inline_image(
        build_message(subject="logo x1000", html=html), logo, "logo@kave.test"
    )
    await post_events(client, [inbound_event(message)])
    email_id = await _email_id(browser_like, "logo x1000")

    body = (await browser_like.get(f"/console/emails/{email_id}/body")).text
    data_uri = "data:image/png;base64," + base64.b64encode(logo).decode()
    shown = body.count(data_uri)
    assert shown >= 1 and shown * len(data_uri) <= shown_bytes * 4 // 3 + 4
    assert body.count('src="cid:logo@kave.test"') == 1000 - shown  # the rest left as they were
    assert "A lucid:dream." in body  # not a reference


async def _email_id(client: httpx.AsyncClient, subject: str) -> str:
    found: list[str] = []

    async def listed() -> bool:
        inbox = await client.get("/console/emails", params={"subject": subject})
        found[:] = re.findall(r'href="/console/emails/([0-9a-f-]{36})"', inbox.text)
        return bool(found)

    await wait_until(listed)
    return found[0]


async def test_delete_an_email_after_confirming(
    browser_like: httpx.AsyncClient, make_user: MakeUser, client: httpx.AsyncClient, app: FastAPI
) -> None:
    user = await make_user()
    await sign_in(browser_like, user.email)
    await post_events(client, [inbound_event(build_message(subject="to be deleted"))])
    email_id = await _email_id(browser_like, "to be deleted")
    confirm = await browser_like.get(f"/console/emails/{email_id}/delete")
    assert confirm.status_code == 200 and "cannot be undone" in confirm.text
    done = await browser_like.post(
        f"/console/emails/{email_id}/delete", data={"csrf": csrf_of(confirm)}
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/console/emails?deleted=true"
    async with app.state.services.session_factory() as session:
        assert await EmailRepository(session).get(uuid.UUID(email_id)) is None


async def test_replay_all_failed_after_confirming(
    browser_like: httpx.AsyncClient, make_user: MakeUser, client: httpx.AsyncClient, app: FastAPI
) -> None:
    user = await make_user(scopes=["events:read", "events:replay"])
    await sign_in(browser_like, user.email)
    await post_events(client, ["bad one", "bad two"])

    async def failed() -> Any:
        async with app.state.services.session_factory() as session:
            rows = await EventRepository(session).page(
                status="failed", kind=None, received_after=None, after=None, limit=10
            )
            return len(rows) == 2

    await wait_until(failed)
    confirm = await browser_like.get("/console/events/replay-failed")
    assert "2 failed event(s)" in confirm.text
    done = await browser_like.post("/console/events/replay-failed", data={"csrf": csrf_of(confirm)})
    assert done.headers["location"] == "/console/events?requeued=2"


async def test_the_test_email_form_refuses_bad_input_and_counts_a_repeat_as_duplicate(
    browser_like: httpx.AsyncClient, make_user: MakeUser, app: FastAPI
) -> None:
    user = await make_user()
    await sign_in(browser_like, user.email)
    form = await browser_like.get("/console/test-email")
    token = csrf_of(form)
    raw = build_message(subject="pasted in").as_string()
    bad = await browser_like.post(
        "/console/test-email", data={"csrf": token, "recipient": "nobody", "raw": raw}
    )
    assert bad.status_code == 400 and "receiving address" in bad.text
    empty = await browser_like.post(
        "/console/test-email", data={"csrf": token, "recipient": "in@kave.example.com"}
    )
    assert empty.status_code == 400
    sent = {"csrf": token, "recipient": "in@kave.example.com", "raw": raw}
    first = await browser_like.post("/console/test-email", data=sent)
    assert first.headers["location"].startswith("/console/test-email?sent=")
    again = await browser_like.post("/console/test-email", data=sent)
    assert again.headers["location"] == "/console/test-email?duplicate=true"

    async def arrived() -> bool:
        async with app.state.services.session_factory() as session:
            rows = await EmailRepository(session).page(
                EmailFilters(subject_contains="pasted in"), after=None, limit=5
            )
            return len(rows) == 1

    await wait_until(arrived)


async def test_the_console_root_and_its_assets(browser_like: httpx.AsyncClient) -> None:
    root = await browser_like.get("/console")
    assert root.status_code == 307 and root.headers["location"] == "/console/"
    css = await browser_like.get("/console/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "http" not in css.text  # no font or image from elsewhere
    assert (await browser_like.get("/console/static/nothing.js")).status_code == 404
