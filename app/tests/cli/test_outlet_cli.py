"""`kave destinations add/list/test` and `kave api-keys create/revoke`, as a shell runs them."""

from __future__ import annotations

import re
from typing import Any

import httpx
from standardwebhooks import Webhook

from app.tests.cli.test_cli import cli  # noqa: F401 (the fixture)
from app.tests.destinations.receiver import receiver
from app.tests.fixtures.api import MakeUser


async def test_destinations_add_list_and_test(cli: Any) -> None:  # noqa: F811
    async with receiver() as hook:
        added = await cli("destinations", "add", "--url", hook.url, "--recipients", "support@*")
        assert added.returncode == 0, added.stderr
        destination_id = re.search(r"destination ([0-9a-f-]{36})", added.stdout).group(1)  # type: ignore[union-attr]
        secret = re.search(r"(whsec_\S+)", added.stdout).group(1)  # type: ignore[union-attr]
        listed = await cli("destinations", "list")
        assert destination_id in listed.stdout and "support@*" in listed.stdout
        assert secret not in listed.stdout
        tested = await cli("destinations", "test", destination_id)
        assert tested.returncode == 0, tested.stderr
        assert "HTTP 200" in tested.stdout
    (ping,) = hook.requests
    assert Webhook(secret).verify(ping.body, ping.headers)["type"] == "ping"
    refused = await cli("destinations", "add", "--url", "ftp://example.com/")
    assert refused.returncode != 0


async def test_api_keys_create_and_revoke(
    cli: Any,  # noqa: F811
    make_user: MakeUser,
    client: httpx.AsyncClient,
) -> None:
    user = await make_user(scopes=["emails:read"])
    beyond = await cli(
        "api-keys", "create", "--email", user.email, "--name", "x", "--scope", "users:admin"
    )
    assert beyond.returncode == 1 and "lacks" in beyond.stderr
    created = await cli(
        "api-keys", "create", "--email", user.email, "--name", "bot", "--scope", "emails:read"
    )
    assert created.returncode == 0, created.stderr
    key = re.search(r"(kave_\S+)", created.stdout).group(1)  # type: ignore[union-attr]
    key_id = re.search(r"API key ([0-9a-f-]{36})", created.stdout).group(1)  # type: ignore[union-attr]
    bearer = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/api/v1/emails", headers=bearer)).status_code == 200
    revoked = await cli("api-keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert (await client.get("/api/v1/emails", headers=bearer)).status_code == 401
