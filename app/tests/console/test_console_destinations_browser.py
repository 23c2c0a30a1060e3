"""The destinations pages in a real browser: sign in, find a destination whose notification
failed (it points at a closed local port), see the notification and its attempts, replay it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from app.db.base import Base
from app.deps import Services
from app.destinations import service
from app.destinations.models import Destination, Notification
from app.destinations.repository import AttemptRepository, NotificationRepository
from app.destinations.schemas import DestinationCreate
from app.tests.conftest import make_settings
from app.tests.console.conftest import MakeUser, Tab
from app.tests.console.server import ThreadedServer
from app.tests.console.test_console_browser import expect, only_kave, receive
from app.tests.console.test_console_destinations import closed_port_url
from app.tests.destinations.support import FAST_OUTLET

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def console_server(
    migrated_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ThreadedServer]:
    """The console's server, with an outlet that gives up within moments."""
    settings = make_settings(
        migrated_database,
        tmp_path_factory.mktemp("console-destinations"),
        token_rate_limit="1000/minute",
        destinations_allow_private_networks=True,
        **FAST_OUTLET,
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


def test_see_a_destination_its_failed_notification_and_replay_it(
    tab: Tab, console_user: MakeUser, console_server: ThreadedServer
) -> None:
    description = f"Nobody listens {uuid.uuid4().hex[:8]}"

    async def add(services: Services) -> Destination:
        async with services.session_factory() as session:
            body = DestinationCreate(url=closed_port_url(), recipients="*", description=description)
            return await service.create_destination(session, services.settings, body)

    destination = console_server.run(add)
    receive(console_server, subject="For the outlet")

    async def failed(services: Services) -> Notification | None:
        async with services.session_factory() as session:
            rows = await NotificationRepository(session).page(
                destination.id, status="failed", after=None, limit=1
            )
            return rows[0] if rows else None

    notification = console_server.wait_for(failed)

    tab.sign_in(console_user("destinations:admin"))
    page = tab.page
    tab.nav("Destinations").click()
    link = page.get_by_role("link", name=destination.url)
    row = page.get_by_role("row").filter(has=link)
    expect()(row).to_contain_text(description)
    expect()(row).to_contain_text("enabled")
    link.click()
    expect()(page.get_by_role("heading", level=1)).to_contain_text(destination.url)
    replay = page.get_by_role("button", name=re.compile("^Replay the notification"))
    notification_row = page.get_by_role("row").filter(has=replay)
    expect()(notification_row).to_contain_text("email.received")
    expect()(notification_row).to_contain_text("failed")
    expect()(notification_row).to_contain_text("no answer")

    async def attempts(services: Services) -> int:
        async with services.session_factory() as session:
            return len(await AttemptRepository(session).for_notification(notification.id))

    before = console_server.run(attempts)
    replay.click()
    expect()(page.get_by_role("status")).to_contain_text("back in the queue")

    async def tried_again(services: Services) -> Any:
        return True if await attempts(services) > before else None

    console_server.wait_for(tried_again)
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/console/destinations", f"/console/destinations/{destination.id}"):
        page.goto(path)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width} px wide at 390 px"
    only_kave(tab)
