"""The console in a real browser (Debian's Chromium driven by Playwright) against a real server.

Every test also checks that each request its pages made went to Kave itself: the console must
work on a network with no internet.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from typing import Any

import pytest

from app.deps import Services
from app.processing.inbox import EventRepository
from app.processing.models import EventStatus, WebhookEvent
from app.tests.console.conftest import MakeUser, Tab, post_webhook, wait_for_email
from app.tests.console.server import ThreadedServer
from app.tests.fixtures.api import PASSWORD
from app.tests.support import build_message, inbound_event, png, with_inline_image

pytestmark = pytest.mark.slow

SCRIPTED_HTML = (
    '<p id="mark">static text of the html part</p>'
    "<script>document.getElementById('mark').textContent = 'the script ran';</script>"
    '<img alt="tracker" src="https://tracker.example.net/pixel.png">'
)


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def only_kave(tab: Tab) -> None:
    own = f"{tab.server.url}/"
    # A request the CSP blocked was never sent: the browser refused it before the network.
    elsewhere = [
        url for url in tab.requests if not url.startswith(own) and url not in tab.blocked_by_csp
    ]
    assert tab.requests, "the pages made no request at all"
    assert elsewhere == []
    assert tab.refused == []


def receive(server: ThreadedServer, **message: Any) -> tuple[str, bytes]:
    subject = f"{message.pop('subject', 'Console test')} {uuid.uuid4().hex[:8]}"
    built = build_message(subject=subject, **message)
    answer = post_webhook(server, [inbound_event(built)])
    assert answer == {"accepted": 1, "duplicates": 0}
    return subject, built.as_bytes()


def test_sign_in_see_and_read_a_just_received_email(
    tab: Tab, console_user: MakeUser, console_server: ThreadedServer
) -> None:
    pdf = os.urandom(50_000)
    subject, _ = receive(
        console_server,
        text="The plain words of this email.",
        html=SCRIPTED_HTML,
        attachments=[("report Q3.pdf", "application/pdf", pdf)],
    )
    wait_for_email(console_server, subject)
    tab.sign_in(console_user())
    page = tab.page

    tab.nav("Inbox").click()
    row = page.get_by_role("row").filter(has_text=subject)
    expect()(row).to_contain_text("alice@example.org")
    expect()(row).to_contain_text("processed")
    row.get_by_role("link", name=subject).click()

    expect()(page.get_by_role("heading", level=1)).to_have_text(subject)
    expect()(page.locator("pre.body-text")).to_contain_text("The plain words of this email.")

    # The HTML part: in a frame sandboxed without scripts or same-origin, and its script did
    # not run (its text is the one the markup carries).
    frame_element = page.locator("iframe.body-html")
    assert frame_element.get_attribute("sandbox") == ""
    frame = page.frame_locator("iframe.body-html")
    expect()(frame.locator("#mark")).to_have_text("static text of the html part")
    body_frame = next(f for f in page.frames if f.url.endswith("/body"))
    assert body_frame.evaluate("() => document.getElementById('mark').textContent") == (
        "static text of the html part"
    )
    # The tracker image was blocked by the frame's CSP: never requested, not even refused.
    tab.settle(lambda: bool(tab.blocked_by_csp))
    assert tab.blocked_by_csp == ["https://tracker.example.net/pixel.png"]

    with page.expect_download() as download_info:
        page.get_by_role("link", name="report Q3.pdf").click()
    download = download_info.value
    assert download.suggested_filename == "report Q3.pdf"
    with open(download.path(), "rb") as saved:
        assert hashlib.sha256(saved.read()).hexdigest() == hashlib.sha256(pdf).hexdigest()
    only_kave(tab)


def test_remote_images_load_only_when_asked(
    tab: Tab, console_user: MakeUser, console_server: ThreadedServer
) -> None:
    subject, _ = receive(console_server, html=SCRIPTED_HTML)
    email = wait_for_email(console_server, subject)
    tab.sign_in(console_user("emails:read"))
    tab.page.goto(f"/console/emails/{email.id}")
    expect()(tab.page.frame_locator("iframe").locator("#mark")).to_be_visible()
    assert tab.refused == []
    # Asked for, the frame requests the image (and this test's guard keeps it on the machine).
    with tab.page.expect_event("requestfailed", lambda r: "tracker.example.net" in r.url):
        tab.page.get_by_role("link", name="Load remote images").click()
    assert tab.page.url.endswith("?remote_images=true")


def test_inline_images_show_in_the_body_without_asking(
    tab: Tab, console_user: MakeUser, console_server: ThreadedServer
) -> None:
    subject = f"Inline logo {uuid.uuid4().hex[:8]}"
    html = '<p id="mark">with a logo</p><img id="logo" alt="logo" src="cid:logo@kave.test">'
    built = with_inline_image(
        build_message(subject=subject, html=html), png(7, 5), "logo@kave.test"
    )
    assert post_webhook(console_server, [inbound_event(built)]) == {"accepted": 1, "duplicates": 0}
    email = wait_for_email(console_server, subject)
    tab.sign_in(console_user("emails:read"))
    tab.page.goto(f"/console/emails/{email.id}")
    expect()(tab.page.frame_locator("iframe").locator("#mark")).to_be_visible()
    body_frame = next(f for f in tab.page.frames if f.url.endswith("/body"))
    # Decoded by the browser inside the sandboxed, script-less frame: its real size.
    size = body_frame.wait_for_function(
        "() => { const i = document.getElementById('logo');"
        " return i.complete && i.naturalWidth ? [i.naturalWidth, i.naturalHeight] : null; }"
    ).json_value()
    assert size == [7, 5]
    only_kave(tab)


async def _failed_event(services: Services) -> WebhookEvent | None:
    async with services.session_factory() as session:
        failed = await EventRepository(session).page(
            status=EventStatus.FAILED.value,
            kind="invalid",
            received_after=None,
            after=None,
            limit=1,
        )
        return failed[0] if failed else None


def test_find_a_failed_event_and_replay_it(
    tab: Tab, console_user: MakeUser, console_server: ThreadedServer
) -> None:
    marker = f"not an object {uuid.uuid4().hex}"
    post_webhook(console_server, [marker])
    event = console_server.wait_for(_failed_event)
    first_failure = event.failed_at
    tab.sign_in(console_user("events:read", "events:replay"))
    page = tab.page
    tab.nav("Events").click()
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    replay = page.get_by_role("button", name=re.compile("^Replay"))
    row = page.get_by_role("row").filter(has=replay).first
    expect()(row).to_contain_text("not a recognisable Mandrill event")
    page.goto(f"/console/events/{event.id}")
    expect()(page.locator("pre.source")).to_contain_text(marker)
    page.get_by_role("button", name="Replay").click()
    expect()(page.get_by_role("status")).to_contain_text("back in the queue")

    async def failed_again(services: Services) -> WebhookEvent | None:
        async with services.session_factory() as session:
            now = await EventRepository(session).get_without_payload(event.id)
            again = now is not None and now.status == "failed" and now.failed_at != first_failure
            return now if again else None

    replayed = console_server.wait_for(failed_again)
    assert replayed.attempts == 1
    only_kave(tab)


def test_send_a_test_email_through_the_form(
    tab: Tab, console_user: MakeUser, console_server: ThreadedServer
) -> None:
    subject = f"Sent from the console {uuid.uuid4().hex[:8]}"
    message = build_message(subject=subject, text="Typed into no terminal at all.")
    tab.sign_in(console_user())
    page = tab.page
    tab.nav("Send a test email").click()
    page.get_by_label("Receiving address").fill("support@kave.example.com")
    page.get_by_label("An .eml file").set_input_files(
        {"name": "test.eml", "mimeType": "message/rfc822", "buffer": message.as_bytes()}
    )
    page.get_by_role("button", name="Send").click()
    expect()(page.get_by_role("status")).to_contain_text("Accepted as event")

    email = wait_for_email(console_server, subject)
    assert email.envelope_recipient == "support@kave.example.com"
    tab.nav("Inbox").click()
    page.get_by_label("Subject").fill(subject)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=subject).click()
    expect()(page.locator("pre.body-text")).to_contain_text("Typed into no terminal at all.")
    only_kave(tab)


def test_a_forged_csrf_token_is_refused(tab: Tab, console_user: MakeUser) -> None:
    tab.sign_in(console_user())
    page = tab.page
    page.goto("/console/events/replay-failed")
    page.locator("input[name=csrf]").last.evaluate("input => { input.value = 'forged'; }")
    page.get_by_role("button", name="Replay all failed events").click()
    expect()(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect()(page.get_by_role("alert")).to_contain_text("security token")
    only_kave(tab)


def test_pages_beyond_the_users_scopes_are_refused(
    tab: Tab, console_user: MakeUser, console_server: ThreadedServer
) -> None:
    subject, _ = receive(console_server)
    email = wait_for_email(console_server, subject)
    tab.sign_in(console_user("emails:read"))
    page = tab.page
    expect()(tab.nav("Inbox")).to_be_visible()
    expect()(tab.nav("Events")).to_have_count(0)
    response = page.goto("/console/events")
    assert response is not None and response.status == 403
    expect()(page.get_by_role("alert")).to_contain_text("events:read")
    page.goto(f"/console/emails/{email.id}")
    expect()(page.get_by_role("link", name=re.compile("Delete"))).to_have_count(0)
    response = page.goto(f"/console/emails/{email.id}/delete")
    assert response is not None and response.status == 403
    only_kave(tab)


@pytest.mark.parametrize("width", [390, 1280])
def test_pages_fit_the_screen_and_work_from_the_keyboard(
    tab: Tab, console_user: MakeUser, console_server: ThreadedServer, width: int
) -> None:
    subject, _ = receive(console_server, html=SCRIPTED_HTML)
    email = wait_for_email(console_server, subject)
    page = tab.page
    page.set_viewport_size({"width": width, "height": 844})
    # Signed in with the keyboard alone: tab to each field, type, Enter.
    page.goto("/console/login")
    # The email field takes the focus on arrival (autofocus, applied once the page has
    # rendered: typing before then went nowhere, one run in a few).
    expect()(page.locator("#email")).to_be_focused()
    page.keyboard.type(console_user())
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{console_server.url}/console/")
    for path in ("/console/", "/console/emails", f"/console/emails/{email.id}", "/console/events"):
        page.goto(path)
        overflow = page.evaluate("() => document.documentElement.scrollWidth")
        assert overflow <= width, f"{path} is {overflow} px wide at {width} px"
        # Every form field has a label a screen reader announces.
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                .filter(field => !field.labels || field.labels.length === 0)
                .map(field => field.name)"""
        )
        assert unlabelled == [], path
    only_kave(tab)


def test_delete_an_email_after_confirming(
    tab: Tab, console_user: MakeUser, console_server: ThreadedServer
) -> None:
    subject, _ = receive(console_server, subject="Delete me")
    email = wait_for_email(console_server, subject)
    tab.sign_in(console_user("emails:read", "emails:delete"))
    page = tab.page
    page.goto(f"/console/emails/{email.id}")
    page.get_by_role("link", name="Delete…").click()
    expect()(page.get_by_role("heading", level=1)).to_have_text("Delete this email?")
    page.get_by_role("button", name="Delete the email").click()
    expect()(page.get_by_role("status")).to_have_text("The email was deleted.")
    expect()(page.get_by_role("link", name=subject)).to_have_count(0)
    response = page.goto(f"/console/emails/{email.id}")
    assert response is not None and response.status == 404
    only_kave(tab)
