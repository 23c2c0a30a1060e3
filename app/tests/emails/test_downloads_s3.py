"""Attachment downloads on S3 storage: streamed, or a 307 to a presigned URL."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.tests.emails.factories import add_email, attachment_ids
from app.tests.fixtures.api import TokenFor
from app.tests.fixtures.s3 import TEST_REGION, delete_bucket, unique_bucket_name


@pytest.fixture
def settings_overrides(s3_endpoint_url: str) -> dict[str, Any]:
    return {
        "storage_backend": "s3",
        "s3_endpoint_url": s3_endpoint_url,
        "s3_bucket": unique_bucket_name(),
        "s3_region": TEST_REGION,
        "s3_access_key_id": os.environ.get("TEST_S3_ACCESS_KEY_ID", "testing"),
        "s3_secret_access_key": os.environ.get("TEST_S3_SECRET_ACCESS_KEY", "testing"),
        "presigned_url_ttl_seconds": 120,
    }


@pytest.fixture
async def s3_app(app: FastAPI, settings: Settings) -> AsyncIterator[FastAPI]:
    yield app
    await delete_bucket(settings)


async def test_stream_and_presigned_redirect(
    s3_app: FastAPI, client: httpx.AsyncClient, session: AsyncSession, token_for: TokenFor
) -> None:
    data = os.urandom(70_000)
    email = await add_email(
        session,
        s3_app.state.services.blob_store,
        attachments=[("Grüße.pdf", "application/pdf", data)],
    )
    [attachment_id] = await attachment_ids(session, email.id)
    headers = await token_for("emails:read")
    path = f"/api/v1/attachments/{attachment_id}/content"

    streamed = await client.get(path, headers=headers)
    assert streamed.status_code == 200
    assert streamed.content == data
    assert streamed.headers["content-length"] == str(len(data))

    moved = await client.get(path, headers=headers, params={"redirect": "true"})
    assert moved.status_code == 307
    location = moved.headers["location"]
    query = parse_qs(urlparse(location).query)
    assert query["X-Amz-Expires"] == ["120"]
    assert "attachment" in query["response-content-disposition"][0]
    async with httpx.AsyncClient() as outside:
        direct = await outside.get(location)
    assert direct.status_code == 200
    assert direct.content == data
    assert direct.headers["content-type"] == "application/pdf"


async def test_redirect_to_a_missing_blob_is_404(
    s3_app: FastAPI, client: httpx.AsyncClient, session: AsyncSession, token_for: TokenFor
) -> None:
    email = await add_email(session, None, attachments=[("gone.txt", "text/plain", b"never put")])
    [attachment_id] = await attachment_ids(session, email.id)
    response = await client.get(
        f"/api/v1/attachments/{attachment_id}/content",
        headers=await token_for("emails:read"),
        params={"redirect": "true"},
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "blob_not_found"
