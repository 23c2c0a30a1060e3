"""SSRF: in production a destination that resolves to a loopback, private, link-local or
metadata address is refused, when it is saved and again when a notification is sent."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.destinations.errors import DestinationRefused
from app.destinations.models import Destination
from app.destinations.signing import new_secret
from app.destinations.ssrf import check_destination_url, forbidden_address
from app.tests.destinations.receiver import eventually, receiver
from app.tests.destinations.support import FAST_OUTLET, send_mail


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {**FAST_OUTLET, "environment": "production"}


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://10.1.2.3/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "http://93.184.215.14/hook",  # public, but plain http
    ],
)
async def test_refused_at_creation_in_production(
    client: httpx.AsyncClient, admin_headers: dict[str, str], url: str
) -> None:
    answer = await client.post("/api/v1/destinations", json={"url": url}, headers=admin_headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "destination_refused"
    assert (await client.get("/api/v1/destinations", headers=admin_headers)).json()["items"] == []


async def test_refused_again_at_send(
    client: httpx.AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    async with receiver() as hook:
        # Saved while it pointed elsewhere (or before the rule): the send must still refuse it.
        port = hook.url.split(":")[2].split("/")[0]
        now = utcnow()
        destination = Destination(
            id=uuid.uuid4(),
            url=f"https://localhost:{port}/hook",
            recipients="*",
            description="",
            enabled=True,
            secret=new_secret(),
            consecutive_failures=0,
            created_at=now,
            updated_at=now,
        )
        session.add(destination)
        await session.commit()
        await send_mail(client)
        path = f"/api/v1/destinations/{destination.id}/notifications"

        async def attempted() -> bool:
            items = (await client.get(path, headers=admin_headers)).json()["items"]
            return bool(items) and (items[0]["last_error"] or "").startswith("refused")

        await eventually(attempted)
        assert hook.requests == []


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("8.8.8.8", False),
        ("2606:4700:4700::1111", False),
        ("127.0.0.1", True),
        ("192.168.1.1", True),
        ("172.16.0.1", True),
        ("100.64.0.1", True),
        ("100.100.100.200", True),
        ("fd00:ec2::254", True),
        ("fe80::1", True),
        ("224.0.0.1", True),
    ],
)
def test_forbidden_addresses(address: str, forbidden: bool) -> None:
    assert forbidden_address(ipaddress.ip_address(address)) is forbidden


async def test_allowed_when_the_operator_says_so() -> None:
    await check_destination_url("http://127.0.0.1:9/hook", allow_private=True)
    with pytest.raises(DestinationRefused):
        await check_destination_url("http://127.0.0.1:9/hook", allow_private=False)
    with pytest.raises(DestinationRefused):
        await check_destination_url("https://user:pw@example.com/", allow_private=True)
