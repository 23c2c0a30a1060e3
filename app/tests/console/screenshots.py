"""Take the console's screenshots for docs/images/: `python -m app.tests.console.screenshots`.

A throwaway SQLite database, migrated by Alembic; a real server (the browser tests' one) fed
through the signed webhook; Debian's Chromium at 1280 px (and the inbox at 390 px).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from alembic.config import Config

from alembic import command
from app.core.security import ALL_SCOPES
from app.deps import Services
from app.tests.conftest import ROOT, make_settings
from app.tests.console.conftest import CHROMIUM, post_webhook, wait_for_email
from app.tests.console.server import ThreadedServer
from app.tests.fixtures.api import PASSWORD
from app.tests.support import build_message, inbound_event
from app.users.service import create_user

IMAGES = ROOT / "docs" / "images"
OPERATOR = "ops@example.com"

MAIL = [
    ("Alice Martin <alice@example.org>", "Invoice November", [("invoice-2026-11.pdf", 48_213)]),
    ("Bob Stone <bob@shipping.example>", "Your parcel is on its way", []),
    ("Carol Diaz <carol@example.net>", "Re: Quarterly report", [("Q3 report.xlsx", 120_448)]),
    ("noreply@newsletter.example", "December news: what changed", []),
    ("Dan Wu <dan@example.com>", "Meeting notes 1 December", [("notes.txt", 2_210)]),
]
HTML = (
    "<div><h2>Invoice November</h2><p>Hello,</p><p>please find attached the invoice for "
    "November. The total is <strong>EUR 1,240.00</strong>, due on 15 December.</p>"
    '<img alt="logo" src="https://cdn.example.org/logo.png"><p>Kind regards,<br>Alice</p></div>'
)


async def _operator(services: Services) -> None:
    async with services.session_factory() as session:
        await create_user(session, email=OPERATOR, password=PASSWORD, scopes=ALL_SCOPES)


def main() -> int:
    if not CHROMIUM.exists():
        print("needs /usr/bin/chromium (apt-get install chromium)", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="kave-shots-"))
    url = f"sqlite+aiosqlite:///{work / 'kave.db'}"
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")
    server = ThreadedServer(make_settings(url, work)).start()
    try:
        server.run(_operator)
        for sender, subject, files in MAIL:
            message = build_message(
                sender=sender,
                subject=subject,
                text=f"{subject}\n\nHello,\n\nthe details are below.\n\nKind regards",
                html=HTML if subject == "Invoice November" else None,
                attachments=[(n, "application/octet-stream", b"x" * size) for n, size in files],
            )
            post_webhook(server, [inbound_event(message)])
            time.sleep(0.2)  # distinct receive times, as real mail has
        post_webhook(server, ["not an event", {"event": 42}])
        invoice = wait_for_email(server, "Invoice November")
        wait_for_email(server, "Meeting notes")
        IMAGES.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 800}, base_url=server.url)
            page.goto("/console/login")
            page.get_by_label("Email").fill(OPERATOR)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/console/")
            page.screenshot(path=IMAGES / "console-dashboard.png", full_page=True)
            page.goto("/console/emails")
            page.screenshot(path=IMAGES / "console-inbox.png", full_page=True)
            # Tall enough for the whole page: a full-page capture leaves the sandboxed frame
            # (drawn by another renderer process) blank.
            page.set_viewport_size({"width": 1280, "height": 1420})
            page.goto(f"/console/emails/{invoice.id}")
            page.frame_locator("iframe").locator("h2").wait_for()
            page.screenshot(path=IMAGES / "console-message.png")
            page.set_viewport_size({"width": 1280, "height": 800})
            page.goto("/console/events")
            page.screenshot(path=IMAGES / "console-events.png", full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            page.goto("/console/emails")
            page.screenshot(path=IMAGES / "console-inbox-390.png", full_page=True)
            browser.close()
    finally:
        server.stop()
    print(f"screenshots written to {IMAGES}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
