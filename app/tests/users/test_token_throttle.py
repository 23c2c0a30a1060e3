"""The token endpoint's rate limit: who is counted, under which address, and who still gets in.

Basic limits are in test_auth.py, one username guessed from many addresses in
app/tests/security/test_auth_abuse.py. Here: the envelope of a refusal, concurrent guesses,
what a success forgives, a rate with several limits, and X-Forwarded-For through real uvicorn
processes started the way Kave's launchers start them. Redis storage: test_rate_limit_redis.py.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.tests.conftest import ROOT
from app.tests.fixtures.api import PASSWORD, MakeUser
from app.tests.server_process import ServerProcess

TOKEN = "/api/v1/auth/token"
WRONG = "not the password"


def client_at(app: FastAPI, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40_000)),
        base_url="http://kave.test",
    )


async def attempt(client: httpx.AsyncClient, username: str, password: str = WRONG) -> int:
    response = await client.post(TOKEN, data={"username": username, "password": password})
    return response.status_code


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details", "request_id"}
    assert error["code"] == "rate_limited"
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert f"Retry after {retry_after} seconds" in error["message"]


async def test_repeated_wrong_passwords_from_one_address_get_429_with_retry_after(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    assert [await attempt(client, user.email) for _ in range(5)] == [401] * 5
    # Even the right password: this address has spent its attempts.
    limited = await client.post(TOKEN, data={"username": user.email, "password": PASSWORD})
    assert_rate_limited(limited)
    assert "access_token" not in limited.text


async def test_concurrent_guesses_cannot_overrun_the_address_limit(
    client: httpx.AsyncClient,
) -> None:
    # Each attempt is charged before its password is checked: twelve at once, five checked.
    codes = await asyncio.gather(*(attempt(client, f"u{i}@example.com") for i in range(12)))
    assert sorted(codes) == [401] * 5 + [429] * 7


async def test_a_success_forgives_the_address_its_failures_at_that_username(
    app: FastAPI, make_user: MakeUser
) -> None:
    user = await make_user()
    async with (
        client_at(app, "198.51.100.1") as typo_then_ok,
        client_at(app, "198.51.100.2") as typo_only,
    ):
        assert await attempt(typo_then_ok, user.email) == 401
        assert await attempt(typo_then_ok, user.email, PASSWORD) == 200
        assert await attempt(typo_only, user.email) == 401
        for i in range(5):  # guard the username from elsewhere
            async with client_at(app, f"203.0.113.{i + 1}") as attacker:
                assert await attempt(attacker, user.email) == 401
        assert await attempt(typo_then_ok, user.email, PASSWORD) == 200
        # Its failure at this username still counts while the username is guarded.
        refused = await typo_only.post(TOKEN, data={"username": user.email, "password": PASSWORD})
        assert_rate_limited(refused)


@pytest.mark.parametrize("settings_overrides", [{"token_rate_limit": "5/minute;3/hour"}])
async def test_every_limit_of_the_rate_applies(app: FastAPI, make_user: MakeUser) -> None:
    # The second limit is the stricter one here: it is the one that refuses.
    user = await make_user()
    async with client_at(app, "198.51.100.1") as one:
        assert [await attempt(one, f"u{i}@example.com") for i in range(4)] == [401] * 3 + [429]
    for i in range(3):
        async with client_at(app, f"203.0.113.{i + 1}") as attacker:
            assert await attempt(attacker, user.email) == 401
    async with client_at(app, "203.0.113.1") as attacker:
        assert await attempt(attacker, user.email) == 429
    async with client_at(app, "198.51.100.99") as owner:
        assert await attempt(owner, user.email, PASSWORD) == 200


# ------------------------------------------------------ X-Forwarded-For, through real uvicorn


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop_quietly()


async def start_server(
    servers: list[ServerProcess], database_url: str, tmp_path: Path, **env: str
) -> ServerProcess:
    server = ServerProcess(
        database_url=database_url,
        storage_path=tmp_path / "blobs",
        log=tmp_path / f"server-{len(servers)}.log",
        **env,
    )
    servers.append(server)
    return await asyncio.to_thread(server.start)


async def codes_with_forwarded_for(server: ServerProcess, addresses: list[str]) -> list[int]:
    """One wrong password per address, each for another username (so only the address
    counter can refuse), sent from 127.0.0.1 with `X-Forwarded-For: <address>`."""
    codes = []
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        for i, address in enumerate(addresses):
            response = await c.post(
                TOKEN,
                data={"username": f"user{i}@example.com", "password": WRONG},
                headers={"X-Forwarded-For": address},
            )
            if response.status_code == 429:
                assert_rate_limited(response)
            codes.append(response.status_code)
    return codes


@pytest.mark.slow
async def test_forwarded_for_from_an_untrusted_peer_does_not_change_the_counted_address(
    migrated_database: str, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    # Started as `make run` and the image start it: FORWARDED_ALLOW_IPS empty. The peer is
    # 127.0.0.1, which uvicorn's own default would trust.
    server = await start_server(servers, migrated_database, tmp_path)
    rotating = [f"192.0.2.{i}" for i in range(1, 7)]
    assert await codes_with_forwarded_for(server, rotating) == [401] * 5 + [429]


@pytest.mark.slow
async def test_forwarded_for_from_a_trusted_peer_is_the_counted_address(
    migrated_database: str, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    server = await start_server(
        servers, migrated_database, tmp_path, FORWARDED_ALLOW_IPS="127.0.0.1"
    )
    rotating = [f"192.0.2.{i}" for i in range(1, 7)]
    assert await codes_with_forwarded_for(server, rotating) == [401] * 6
    # The proxy's clients are counted apart: one of them alone reaches the limit.
    assert await codes_with_forwarded_for(server, ["198.51.100.7"] * 6) == [401] * 5 + [429]


def test_the_launchers_trust_no_forwarded_for_unless_configured() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert 'FORWARDED_ALLOW_IPS=""' in dockerfile
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    # Empty unless set on the host or in .env (Kave reads empty as unset; uvicorn as none).
    assert "FORWARDED_ALLOW_IPS: ${FORWARDED_ALLOW_IPS:-}\n" in compose
    if shutil.which("make") is None:
        pytest.skip("no make")

    def uvicorn_line(*args: str) -> str:
        done = subprocess.run(
            ["make", "-n", "run", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env={"PATH": "/usr/bin:/bin"},
        )
        return done.stdout.split("uvicorn app.main:app", 1)[1]

    assert "--forwarded-allow-ips=''" in uvicorn_line()
    assert "--forwarded-allow-ips='10.0.0.5'" in uvicorn_line("FORWARDED_ALLOW_IPS=10.0.0.5")
