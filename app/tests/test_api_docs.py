"""The API docs are Kave's own: every file they load comes from Kave, with a strict CSP.

Checked twice: the pages' references fetched one by one, and the pages in a real browser
(Chromium) with every request to another host refused and recorded.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from app.tests.server_process import ServerProcess

DOCS_PAGES = ("/api/v1/docs", "/api/v1/redoc")
_REFERENCE = re.compile(r'(?:src|href|spec-url)="([^"]+)"')
_ANY_HOST = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.parametrize("page", DOCS_PAGES)
async def test_every_file_a_docs_page_references_is_served_by_kave(
    client: httpx.AsyncClient, page: str
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-eval" not in csp
    assert not _ANY_HOST.search(csp)
    references = _REFERENCE.findall(response.text)
    assert len(references) >= 2
    if page.endswith("/docs"):
        references.append("/api/v1/docs/swagger-init.js")
    for reference in references:
        assert reference.startswith("/api/v1/"), reference
        asset = await client.get(reference)
        assert asset.status_code == 200, reference
        assert asset.content, reference
    # No other host in the pages, nor in what starts Swagger UI.
    init = (await client.get("/api/v1/docs/swagger-init.js")).text
    assert not _ANY_HOST.search(response.text) and not _ANY_HOST.search(init)
    assert '"validatorUrl": null' in init


async def test_tags_come_in_order_and_operation_ids_are_short(client: httpx.AsyncClient) -> None:
    spec: dict[str, Any] = (await client.get("/api/v1/openapi.json")).json()
    assert [tag["name"] for tag in spec["tags"]][:3] == ["auth", "emails", "events"]
    assert all(tag["description"] for tag in spec["tags"])
    used = {t for item in spec["paths"].values() for op in item.values() for t in op["tags"]}
    assert used <= {tag["name"] for tag in spec["tags"]}
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert "list_emails" in ids and "receive_mandrill_batch" in ids
    assert all("api_v1" not in operation_id for operation_id in ids)


async def test_every_422_is_documented_as_the_envelope(client: httpx.AsyncClient) -> None:
    spec: dict[str, Any] = (await client.get("/api/v1/openapi.json")).json()
    documented = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            answer = operation["responses"].get("422")
            if answer is None:
                continue
            documented += 1
            ref = answer["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ErrorEnvelope"), f"{method.upper()} {path}"
    assert documented >= 10
    assert "HTTPValidationError" not in spec["components"]["schemas"]


async def test_try_it_out_on_the_mandrill_webhook_sends_an_accepted_request(
    client: httpx.AsyncClient,
) -> None:
    # What Swagger UI sends from the documented form body and header examples.
    spec: dict[str, Any] = (await client.get("/api/v1/openapi.json")).json()
    operation = spec["paths"]["/api/v1/webhooks/mailchimp"]["post"]
    [header] = [p for p in operation["parameters"] if p["name"] == "X-Mandrill-Signature"]
    assert header["in"] == "header" and header["required"]
    form = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert form["required"] == ["mandrill_events"]
    body = {"mandrill_events": form["properties"]["mandrill_events"]["example"]}
    response = await client.post(
        "/api/v1/webhooks/mailchimp",
        content=urlencode(body),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Mandrill-Signature": header["example"],
        },
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 0, "duplicates": 0}


@pytest.fixture
def docs_server(migrated_database: str, tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(
        database_url=migrated_database, storage_path=tmp_path / "blobs", log=tmp_path / "s.log"
    )
    try:
        yield server.start()
    finally:
        server.stop_quietly()


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine")
@pytest.mark.parametrize(
    ("page", "rendered"),
    [("/api/v1/docs", ".swagger-ui .info .title"), ("/api/v1/redoc", "h1")],
)
async def test_the_docs_render_in_a_browser_from_kave_alone(
    docs_server: ServerProcess, page: str, rendered: str
) -> None:
    from playwright.async_api import async_playwright

    elsewhere: list[str] = []
    problems: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            tab = await browser.new_page()

            async def only_kave(route: Any) -> None:
                if route.request.url.startswith(docs_server.url):
                    await route.continue_()
                else:
                    elsewhere.append(route.request.url)
                    await route.abort()

            await tab.route("**/*", only_kave)
            tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda error: problems.append(str(error)))
            await tab.goto(f"{docs_server.url}{page}")
            title = await tab.wait_for_selector(rendered, timeout=30_000)
            assert title is not None
            assert "Kave" in await title.inner_text()
            # An operation of the spec is on the page: the spec loaded and was drawn.
            await tab.wait_for_selector("text=List emails", state="attached", timeout=30_000)
            await asyncio.sleep(0)  # let late console messages arrive
        finally:
            await browser.close()
    assert elsewhere == []
    # ReDoc's sidebar credit is an image on cdn.redoc.ly; the CSP blocks it (that is the
    # point), which Chromium reports. Nothing else may go wrong.
    credit = "Loading the image 'https://cdn.redoc.ly/redoc/logo-mini.svg' violates"
    assert [problem for problem in problems if not problem.startswith(credit)] == [], problems
