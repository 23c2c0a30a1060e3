"""Times at the edge of the calendar, in query parameters and in cursors: a clear 4xx, never a 500.

`9999-12-31T23:59:59-14:00` is a valid ISO 8601 time that UTC cannot hold (it is in year
10000 there), like `0001-01-01T00:00:00+14:00` (in year 0).
"""

from __future__ import annotations

import base64
import uuid

import httpx
import orjson
import pytest

from app.tests.fixtures.api import TokenFor

PAST_THE_END = "9999-12-31T23:59:59-14:00"
BEFORE_THE_START = "0001-01-01T00:00:00+14:00"

# Every list route with a time filter, and each of its time parameters.
TIME_PARAMETERS = [
    ("/api/v1/emails", "received_after"),
    ("/api/v1/emails", "received_before"),
    ("/api/v1/events", "received_after"),
    ("/api/v1/audience-events", "fired_after"),
]
# Every route that reads a keyset cursor, with the collection name its cursors carry.
CURSORS = [
    ("/api/v1/emails", "emails"),
    ("/api/v1/events", "events"),
    ("/api/v1/audience-events", "audience-events"),
]


@pytest.fixture
async def reader(token_for: TokenFor) -> dict[str, str]:
    return await token_for("emails:read", "events:read")


def _cursor(collection: str, stamp: str) -> str:
    # Made the way `encode_cursor` makes them, with a time it would never write.
    raw = orjson.dumps([collection, stamp, uuid.uuid4().hex])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@pytest.mark.parametrize(("path", "name"), TIME_PARAMETERS)
@pytest.mark.parametrize("value", [PAST_THE_END, BEFORE_THE_START])
async def test_a_time_utc_cannot_hold_is_422_naming_the_parameter(
    client: httpx.AsyncClient, reader: dict[str, str], path: str, name: str, value: str
) -> None:
    response = await client.get(path, headers=reader, params={name: value})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert f"query parameter '{name}'" in error["message"]
    assert "UTC" in error["message"]
    assert [d["loc"] for d in error["details"]] == [["query", name]]
    assert value not in response.text  # the input is not echoed


@pytest.mark.parametrize(("path", "name"), TIME_PARAMETERS)
@pytest.mark.parametrize(
    "value", ["9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-14:00", "9999-12-31T23:59:59"]
)
async def test_the_extreme_times_utc_can_hold_are_accepted(
    client: httpx.AsyncClient, reader: dict[str, str], path: str, name: str, value: str
) -> None:
    response = await client.get(path, headers=reader, params={name: value})
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


@pytest.mark.parametrize(("path", "collection"), CURSORS)
@pytest.mark.parametrize("stamp", [PAST_THE_END, BEFORE_THE_START])
async def test_a_cursor_with_a_time_utc_cannot_hold_is_400(
    client: httpx.AsyncClient, reader: dict[str, str], path: str, collection: str, stamp: str
) -> None:
    response = await client.get(path, headers=reader, params={"cursor": _cursor(collection, stamp)})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_cursor"


@pytest.mark.parametrize(("path", "collection"), CURSORS)
async def test_a_cursor_at_the_extremes_utc_can_hold_is_accepted(
    client: httpx.AsyncClient, reader: dict[str, str], path: str, collection: str
) -> None:
    for stamp in ("9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00"):
        cursor = _cursor(collection, stamp)
        response = await client.get(path, headers=reader, params={"cursor": cursor})
        assert response.status_code == 200, response.text
