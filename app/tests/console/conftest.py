"""Fixtures of the console tests: a real server, a real Chromium, users and received mail."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.security import ALL_SCOPES
from app.db.base import Base
from app.deps import Services
from app.emails.models import Email
from app.emails.repository import EmailFilters, EmailRepository
from app.tests.conftest import make_settings
from app.tests.console.server import ThreadedServer
from app.tests.fixtures.api import PASSWORD
from app.tests.support import WEBHOOK_PATH, signed_form
from app.users.service import create_user

CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def console_server(
    migrated_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ThreadedServer]:
    settings = make_settings(
        migrated_database,
        tmp_path_factory.mktemp("console"),
        # Many sign-ins from one address in a few seconds; the throttle has its own test.
        token_rate_limit="1000/minute",
    )
    server = ThreadedServer(settings).start()
    try:
        yield server
    finally:
        server.run(_clear_tables)
        server.stop()


async def _clear_tables(services: Services) -> None:
    async with services.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(
            "Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    try:
        yield chromium
    finally:
        chromium.close()
        playwright.stop()


@dataclass
class Tab:
    """A browser page on the console, and every request the pages made."""

    page: Any
    server: ThreadedServer
    requests: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # elsewhere: aborted, never sent
    # Requests the browser itself refused to send because a page's CSP forbids them.
    blocked_by_csp: list[str] = field(default_factory=list)

    def settle(self, done: Callable[[], bool], *, rounds: int = 200) -> None:
        """Let the page run until `done()` (browser events arrive between Playwright calls)."""
        for _ in range(rounds):
            if done():
                return
            self.page.wait_for_timeout(25)
        raise AssertionError("the page never got there")

    def nav(self, name: str) -> Any:
        """A link of the console's navigation bar."""
        return self.page.get_by_role("navigation", name="Console").get_by_role("link", name=name)

    def sign_in(self, email: str, password: str = PASSWORD) -> None:
        self.page.goto("/console/login")
        self.page.get_by_label("Email").fill(email)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(f"{self.server.url}/console/")


@pytest.fixture
def tab(browser: Any, console_server: ThreadedServer) -> Iterator[Tab]:
    context = browser.new_context(
        viewport=VIEWPORT, accept_downloads=True, base_url=console_server.url
    )
    page = context.new_page()
    opened = Tab(page=page, server=console_server)
    own = f"{console_server.url}/"

    def guard(route: Any) -> None:
        url = route.request.url
        if url.startswith(own):
            route.continue_()
        else:
            opened.refused.append(url)
            route.abort()

    def failed(request: Any) -> None:
        if request.failure in ("csp", "net::ERR_BLOCKED_BY_CSP"):
            opened.blocked_by_csp.append(request.url)

    context.on("request", lambda request: opened.requests.append(request.url))
    context.on("requestfailed", failed)
    context.route("**/*", guard)
    try:
        yield opened
    finally:
        context.close()


MakeUser = Callable[..., str]


@pytest.fixture
def console_user(console_server: ThreadedServer) -> MakeUser:
    """`console_user("emails:read")`: a new user with those scopes (all when none); its email."""

    def make(*scopes: str) -> str:
        email = f"op-{uuid.uuid4().hex[:10]}@example.com"

        async def create(services: Services) -> None:
            async with services.session_factory() as session:
                await create_user(
                    session, email=email, password=PASSWORD, scopes=scopes or ALL_SCOPES
                )

        console_server.run(create)
        return email

    return make


def post_webhook(server: ThreadedServer, events: list[Any]) -> dict[str, int]:
    body, headers = signed_form(events)
    response = httpx.post(f"{server.url}{WEBHOOK_PATH}", content=body, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, int] = response.json()
    return answer


def wait_for_email(server: ThreadedServer, subject: str) -> Email:
    async def find(services: Services) -> Email | None:
        async with services.session_factory() as session:
            rows = await EmailRepository(session).page(
                EmailFilters(subject_contains=subject), after=None, limit=1
            )
            return rows[0][0] if rows else None

    found: Email = server.wait_for(find)
    return found


def raw_bytes(message: EmailMessage) -> bytes:
    return message.as_bytes()
