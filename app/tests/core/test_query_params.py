"""Query parameter types shared by the list routes: bad values are a 422 in the envelope."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/emails", "received_after"),
        ("/api/v1/emails", "received_before"),
        ("/api/v1/events", "received_after"),
        ("/api/v1/audience-events", "fired_after"),
    ],
)
@pytest.mark.parametrize("value", ["1700000000", "1.5", "-3"])
async def test_a_number_is_not_a_time(
    client: httpx.AsyncClient, admin_headers: dict[str, str], path: str, name: str, value: str
) -> None:
    response = await client.get(path, params={name: value}, headers=admin_headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["loc"] == ["query", name]
    assert "ISO 8601" in error["details"][0]["msg"]


async def test_an_iso_time_with_a_zone_is_accepted(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.get(
        "/api/v1/emails",
        params={"received_after": "2026-11-21T10:15:00+01:00"},
        headers=admin_headers,
    )
    assert response.status_code == 200
