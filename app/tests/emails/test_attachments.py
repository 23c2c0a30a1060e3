"""Attachment metadata and downloads on local storage (S3: test_downloads_s3.py)."""

from __future__ import annotations

from urllib.parse import unquote

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.storage.base import BlobStore
from app.tests.emails.factories import add_email, attachment_ids
from app.tests.fixtures.api import TokenFor


@pytest.fixture
async def reader(token_for: TokenFor) -> dict[str, str]:
    return await token_for("emails:read")


@pytest.fixture
def store(app: FastAPI) -> BlobStore:
    blob_store: BlobStore = app.state.services.blob_store
    return blob_store


async def test_attachment_metadata_and_download(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession, store: BlobStore
) -> None:
    data = bytes(range(256)) * 1000
    name = 'Résumé "final";\r\nX-Injected: 1.pdf'
    email = await add_email(session, store, attachments=[(name, "application/pdf", data)])
    [attachment_id] = await attachment_ids(session, email.id)
    meta = await client.get(f"/api/v1/attachments/{attachment_id}", headers=reader)
    assert meta.status_code == 200
    assert meta.json()["filename"] == name
    assert meta.json()["email_id"] == str(email.id)

    for params in ({}, {"redirect": "true"}):  # local storage has no presigned URLs: streams
        response = await client.get(
            f"/api/v1/attachments/{attachment_id}/content", headers=reader, params=params
        )
        assert response.status_code == 200
        assert response.content == data
        assert response.headers["content-type"] == "application/pdf"
        assert response.headers["content-length"] == str(len(data))
        assert response.headers["x-content-type-options"] == "nosniff"
        disposition = response.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="')
        assert "\r" not in disposition and "\n" not in disposition
        assert unquote(disposition.split("filename*=UTF-8''")[1]) == name.replace("\r\n", "")


async def test_text_attachment_keeps_its_content_type(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession, store: BlobStore
) -> None:
    email = await add_email(session, store, attachments=[("page.html", "text/html", b"<b>x</b>")])
    [attachment_id] = await attachment_ids(session, email.id)
    response = await client.get(f"/api/v1/attachments/{attachment_id}/content", headers=reader)
    assert response.headers["content-type"] == "text/html"
    assert response.headers["content-disposition"].startswith("attachment;")
