"""Token and auth abuse beyond app/tests/users/test_auth.py (which covers expired, wrongly
signed, `alg: none`, HS512, missing claims, disabled and deleted users, and the basic limits):
replays across disable/enable, header tricks (RS256 key confusion, `kid`, `jwk`, `alg`
spellings), tampered claims, brute force spread over addresses, usernames and forged
X-Forwarded-For (through a real uvicorn: app/tests/users/test_token_throttle.py), the
audience token path, and errors that must not tell cases apart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jose import jwt
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audience.models import AudienceEvent
from app.core.config import Settings
from app.core.security import ALL_SCOPES, create_access_token
from app.processing.models import WebhookEvent
from app.tests.emails.factories import add_email
from app.tests.fixtures.api import PASSWORD, MakeUser, bearer
from app.users.repository import UserRepository

TOKEN = "/api/v1/auth/token"
PROTECTED = "/api/v1/emails"
AUDIENCE = "/api/v1/webhooks/mailchimp/audience"
AUDIENCE_TOKEN = "audience-token-for-tests"  # conftest.make_settings


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], key: bytes, digest: Any) -> str:
    """A JWT with any header, HMAC-signed with `key` whatever the header claims."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


def claims_for(user_id: uuid.UUID, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": str(user_id), "iat": now, "exp": now + 600, "scope": "emails:read"} | extra


def auth(token: str) -> dict[str, bytes]:
    # Bytes: a forged token may hold what no well-behaved client would put in a header.
    return {"Authorization": f"Bearer {token}".encode()}


def error_of(response: httpx.Response) -> tuple[int, str, str, str, str | None]:
    """Everything a client sees of an error, except the per-request id."""
    error = response.json()["error"]
    assert error["request_id"]
    return (
        response.status_code,
        error["code"],
        error["message"],
        json.dumps(error["details"]),
        response.headers.get("www-authenticate"),
    )


def client_at(app: FastAPI, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40_000)),
        base_url="http://kave.test",
    )


# ------------------------------------------------------------------------ replay and revoke


async def test_a_disabled_users_token_stays_refused_when_the_user_is_enabled_again(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    admin = await make_user(scopes=ALL_SCOPES)
    operator = await make_user(scopes=["emails:read"])
    admin_auth, token = bearer(admin, settings), bearer(operator, settings)
    assert (await client.get(PROTECTED, headers=token)).status_code == 200

    disable = await client.patch(
        f"/api/v1/users/{operator.id}", json={"is_active": False}, headers=admin_auth
    )
    assert disable.status_code == 200, disable.text
    refused = await client.get(PROTECTED, headers=token)
    assert error_of(refused)[:2] == (401, "not_authenticated")
    # Nor can the disabled user get a fresh token with the right password.
    fresh = await client.post(TOKEN, data={"username": operator.email, "password": PASSWORD})
    assert fresh.status_code == 401

    enable = await client.patch(
        f"/api/v1/users/{operator.id}", json={"is_active": True}, headers=admin_auth
    )
    assert enable.status_code == 200
    # Enabling the user again does not bring back the tokens issued before it was disabled...
    assert error_of(await client.get(PROTECTED, headers=token))[:2] == (401, "not_authenticated")
    # ...but the password gets a new one that works.
    fresh = await client.post(TOKEN, data={"username": operator.email, "password": PASSWORD})
    assert fresh.status_code == 200
    renewed = auth(fresh.json()["access_token"])
    assert (await client.get(PROTECTED, headers=renewed)).status_code == 200


async def test_a_token_of_a_deleted_user_stays_dead_when_the_email_is_registered_again(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings, session: AsyncSession
) -> None:
    old = await make_user(email="reused@example.com", scopes=["emails:read"])
    old_token = bearer(old, settings)
    await UserRepository(session).delete_by_id(old.id)
    await session.commit()
    new = await make_user(email="reused@example.com", scopes=["emails:read"])
    assert (await client.get(PROTECTED, headers=bearer(new, settings))).status_code == 200
    # The token names the old id, not the address: it must not come back to life.
    assert (await client.get(PROTECTED, headers=old_token)).status_code == 401


# ------------------------------------------------------------------------- forged headers


def forged_tokens(user_id: uuid.UUID, secret: bytes) -> dict[str, str]:
    claims = claims_for(user_id)
    hs256 = {"alg": "HS256", "typ": "JWT"}
    unsigned = f"{_b64(json.dumps({'typ': 'JWT'}).encode())}.{_b64(json.dumps(claims).encode())}"
    attacker = b"attacker-chosen-key"
    return {
        # Key confusion: RS256 in the header, HMAC-SHA256 over our secret as the "public key".
        "rs256_key_confusion": forge(
            {"alg": "RS256", "typ": "JWT"}, claims, secret, hashlib.sha256
        ),
        "es256_header": forge({"alg": "ES256", "typ": "JWT"}, claims, secret, hashlib.sha256),
        "hs384_with_our_key": forge({"alg": "HS384", "typ": "JWT"}, claims, secret, hashlib.sha384),
        "alg_None": forge({"alg": "None"}, claims, b"", hashlib.sha256).rsplit(".", 1)[0] + ".",
        "alg_NONE_signed": forge({"alg": "NONE"}, claims, secret, hashlib.sha256),
        "alg_hs256_lower": forge({"alg": "hs256"}, claims, secret, hashlib.sha256),
        "alg_missing": forge({"typ": "JWT"}, claims, secret, hashlib.sha256),
        "alg_list": forge({"alg": ["HS256"]}, claims, secret, hashlib.sha256),
        "no_signature": unsigned + ".",
        # `kid` pointing at a key the attacker controls (an empty file, a SQL-injected row).
        "kid_dev_null": forge(hs256 | {"kid": "../../../../dev/null"}, claims, b"", hashlib.sha256),
        "kid_sql": forge(
            hs256 | {"kid": "x' UNION SELECT 'attacker-chosen-key"},
            claims,
            attacker,
            hashlib.sha256,
        ),
        # The key travels in the token itself (jwk) or at a URL (jku, x5u).
        "embedded_jwk": forge(
            hs256 | {"jwk": {"kty": "oct", "k": _b64(attacker)}}, claims, attacker, hashlib.sha256
        ),
        "jku": forge(
            hs256 | {"jku": "https://attacker.example/jwks"}, claims, attacker, hashlib.sha256
        ),
        "empty_key": forge(hs256, claims, b"", hashlib.sha256),
        "crit_header": forge(hs256 | {"crit": ["exp"]}, claims, attacker, hashlib.sha256),
        "extra_segment": forge(hs256, claims, secret, hashlib.sha256) + ".e30",
        "huge": "a" * 200_000 + "." + "b" * 10 + "." + "c",
        "non_ascii": "é.é.é",
    }


FORGED = list(forged_tokens(uuid.uuid4(), b"k").keys())


@pytest.mark.parametrize("name", FORGED)
async def test_forged_headers_are_401(
    name: str, client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    user = await make_user(scopes=ALL_SCOPES)
    secret = settings.secret_key.get_secret_value().encode()
    token = forged_tokens(user.id, secret)[name]
    response = await client.get(PROTECTED, headers=auth(token))
    assert error_of(response) == (
        401,
        "not_authenticated",
        "The bearer token is invalid or has expired.",
        "[]",
        "Bearer",
    )


async def test_a_kid_header_does_not_change_which_key_verifies(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    user = await make_user(scopes=ALL_SCOPES)
    secret = settings.secret_key.get_secret_value()
    claims = claims_for(user.id)
    ours = jwt.encode(claims, secret, algorithm="HS256", headers={"kid": "any"})
    theirs = jwt.encode(claims, "attacker-chosen-key", algorithm="HS256", headers={"kid": "any"})
    assert (await client.get(PROTECTED, headers=auth(ours))).status_code == 200
    assert (await client.get(PROTECTED, headers=auth(theirs))).status_code == 401


# -------------------------------------------------------------------------- tampered claims


def tampered(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


async def test_tampered_claims_and_odd_claim_types_are_401(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    user = await make_user(scopes=ALL_SCOPES)
    secret = settings.secret_key.get_secret_value()
    narrow = create_access_token(
        user_id=user.id, scopes=["events:read"], secret_key=settings.secret_key, expires_minutes=5
    ).access_token
    # The narrow token works where it should and not where it should not...
    assert (await client.get("/api/v1/stats", headers=auth(narrow))).status_code == 200
    assert (await client.get(PROTECTED, headers=auth(narrow))).status_code == 403
    now = int(time.time())
    bad = {
        "scope_widened": tampered(narrow, scope=" ".join(ALL_SCOPES)),
        "exp_extended": tampered(narrow, exp=now + 10**8),
        "sub_swapped": tampered(narrow, sub=str(uuid.uuid4())),
        "nbf_future": jwt.encode(claims_for(user.id, nbf=now + 3600), secret, algorithm="HS256"),
        "scope_list": jwt.encode(claims_for(user.id, scope=list(ALL_SCOPES)), secret, "HS256"),
        "sub_number": jwt.encode(claims_for(user.id, sub=7), secret, algorithm="HS256"),
        "sub_nil_uuid": jwt.encode(
            claims_for(user.id, sub=str(uuid.UUID(int=0))), secret, algorithm="HS256"
        ),
        "exp_huge": jwt.encode(claims_for(user.id, exp=10**30), secret, algorithm="HS256"),
        "exp_float_past": jwt.encode(claims_for(user.id, exp=now - 0.5), secret, "HS256"),
    }
    for name, token in bad.items():
        response = await client.get(PROTECTED, headers=auth(token))
        assert response.status_code == 401, (name, response.status_code, response.text)
        assert response.json()["error"]["code"] == "not_authenticated", name


async def test_a_token_issued_in_the_future_is_401(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    user = await make_user(scopes=ALL_SCOPES)
    future = int(time.time()) + 86_400
    token = jwt.encode(
        claims_for(user.id, iat=future, exp=future + 600),
        settings.secret_key.get_secret_value(),
        algorithm="HS256",
    )
    assert (await client.get(PROTECTED, headers=auth(token))).status_code == 401


async def test_tokens_elsewhere_than_the_authorization_header_are_ignored(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    user = await make_user(scopes=ALL_SCOPES)
    token = bearer(user, settings)["Authorization"].split()[1]
    for kwargs in (
        {"params": {"access_token": token}},
        {"headers": {"Cookie": f"access_token={token}; Authorization=Bearer%20{token}"}},
        {"headers": {"X-Access-Token": token}},
        {"headers": {"Authorization": f"Token {token}"}},
        {"headers": {"Authorization": token}},
    ):
        response = await client.get(PROTECTED, **kwargs)
        assert response.status_code == 401, kwargs
    # Two Authorization headers: whichever is read, a bad one must not be ignored into a 500.
    doubled = [("Authorization", f"Bearer {token}"), ("Authorization", "Bearer junk")]
    assert (await client.get(PROTECTED, headers=doubled)).status_code in (200, 401)


# ---------------------------------------------------------------------------- brute force


async def test_one_username_guessed_from_many_addresses_does_not_lock_the_owner_out(
    app: FastAPI, make_user: MakeUser
) -> None:
    await make_user(email="target@example.com")
    spellings = ["target@example.com", "TARGET@example.com", " Target@Example.COM "]
    for i in range(12):
        async with client_at(app, f"203.0.113.{i + 1}") as attacker:
            username = spellings[i % len(spellings)]
            guess = await attacker.post(TOKEN, data={"username": username, "password": f"g{i}" * 6})
            assert guess.status_code == 401
    # The username is guarded now: an address that already guessed gets no second guess...
    async with client_at(app, "203.0.113.1") as attacker:
        again = await attacker.post(
            TOKEN, data={"username": "target@example.com", "password": "another guess"}
        )
    assert_rate_limited(again)
    # ...but the owner, from an address without failures, gets in with the right password.
    async with client_at(app, "198.51.100.99") as owner:
        signed_in = await owner.post(
            TOKEN, data={"username": "target@example.com", "password": PASSWORD}
        )
        assert signed_in.status_code == 200, signed_in.text
        me = await owner.get("/api/v1/auth/me", headers=auth(signed_in.json()["access_token"]))
    assert me.status_code == 200


async def test_forged_forwarded_for_headers_do_not_buy_more_guesses(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    await make_user(email="victim@example.com")
    codes = []
    for i in range(6):
        # Another username each time, so only the address budget can stop this.
        response = await client.post(
            TOKEN,
            data={"username": f"user{i}@example.com", "password": "wrong password!"},
            headers={
                "X-Forwarded-For": f"192.0.2.{i}",
                "X-Real-IP": f"192.0.2.{i}",
                "Forwarded": f"for=192.0.2.{i}",
            },
        )
        codes.append(response.status_code)
    assert codes == [401] * 5 + [429]
    correct = await client.post(
        TOKEN,
        data={"username": "victim@example.com", "password": PASSWORD},
        headers={"X-Forwarded-For": "192.0.2.200"},
    )
    assert_rate_limited(correct)


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details", "request_id"}
    assert error["code"] == "rate_limited"
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    # The envelope says how long, in the same words as the header.
    assert f"Retry after {retry_after} seconds" in error["message"]
    assert "access_token" not in response.text


async def test_a_limited_client_gets_no_token_even_for_other_users(
    app: FastAPI, make_user: MakeUser
) -> None:
    await make_user(email="a@example.com")
    await make_user(email="b@example.com")
    async with client_at(app, "203.0.113.50") as attacker:
        for _ in range(5):
            await attacker.post(TOKEN, data={"username": "a@example.com", "password": "x" * 12})
        for username in ("a@example.com", "b@example.com"):
            response = await attacker.post(TOKEN, data={"username": username, "password": PASSWORD})
            assert_rate_limited(response)
    # Another address may still log in as b (its budget is untouched).
    async with client_at(app, "203.0.113.51") as other:
        ok = await other.post(TOKEN, data={"username": "b@example.com", "password": PASSWORD})
    assert ok.status_code == 200


# ----------------------------------------------------------------------- audience token path


async def _rows(app: FastAPI) -> tuple[int, int]:
    async with app.state.services.session_factory() as s:
        events = await s.scalar(select(func.count()).select_from(WebhookEvent))
        audience = await s.scalar(select(func.count()).select_from(AudienceEvent))
    return int(events or 0), int(audience or 0)


AUDIENCE_FORM = {
    "type": "subscribe",
    "fired_at": "2026-11-21 09:30:00",
    "data[email]": "someone@example.com",
    "data[list_id]": "abc123",
}


@pytest.mark.parametrize(
    "token",
    [
        "wrong",
        AUDIENCE_TOKEN + "x",
        AUDIENCE_TOKEN[:-1],
        AUDIENCE_TOKEN.upper(),
        " " + AUDIENCE_TOKEN,
        AUDIENCE_TOKEN + "%00",
        "%2e%2e",
        "a" * 5000,
        "%C3%A9",
        "%ED%A0%80",  # a lone surrogate, percent-encoded
    ],
)
async def test_a_wrong_audience_token_is_a_plain_404_and_stores_nothing(
    app: FastAPI, client: httpx.AsyncClient, token: str
) -> None:
    nowhere = await client.post("/api/v1/no-such-path", data=AUDIENCE_FORM)
    for method in ("POST", "GET"):
        response = await client.request(method, f"{AUDIENCE}/{token}", data=AUDIENCE_FORM)
        assert response.status_code == 404, (method, token, response.text)
        # The same answer as a path that does not exist: nothing says a token is involved.
        assert error_of(response)[1:] == error_of(nowhere)[1:]
    head = await client.head(f"{AUDIENCE}/{token}")
    assert head.status_code == 404
    assert await _rows(app) == (0, 0)


async def test_the_right_audience_token_is_accepted(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    # The control for the test above: the same form, the right token, is stored.
    response = await client.post(f"{AUDIENCE}/{AUDIENCE_TOKEN}", data=AUDIENCE_FORM)
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0}
    assert (await _rows(app))[0] == 1


@pytest.mark.parametrize("settings_overrides", [{"mailchimp_audience_webhook_token": ""}])
async def test_with_no_audience_token_configured_every_token_is_404(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    for token in ("", " ", "None", "null", AUDIENCE_TOKEN):
        response = await client.post(f"{AUDIENCE}/{token}", data=AUDIENCE_FORM)
        assert response.status_code in (404, 405), token
    assert await _rows(app) == (0, 0)


# --------------------------------------------------------------------- nothing to tell apart


async def test_dead_tokens_all_get_the_same_answer(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings, session: AsyncSession
) -> None:
    disabled = await make_user(scopes=ALL_SCOPES, is_active=False)
    deleted = await make_user(scopes=ALL_SCOPES)
    deleted_token = bearer(deleted, settings)
    await UserRepository(session).delete_by_id(deleted.id)
    await session.commit()
    never = uuid.uuid4()
    secret = settings.secret_key.get_secret_value()
    answers = {
        "disabled": await client.get(PROTECTED, headers=bearer(disabled, settings)),
        "deleted": await client.get(PROTECTED, headers=deleted_token),
        "never_existed": await client.get(
            PROTECTED, headers=auth(jwt.encode(claims_for(never), secret, algorithm="HS256"))
        ),
        "wrong_key": await client.get(
            PROTECTED, headers=auth(jwt.encode(claims_for(never), "other-key", algorithm="HS256"))
        ),
        "expired": await client.get(
            PROTECTED,
            headers=auth(jwt.encode(claims_for(never, exp=1), secret, algorithm="HS256")),
        ),
    }
    seen = {name: error_of(response) for name, response in answers.items()}
    assert len(set(seen.values())) == 1, seen


async def test_a_missing_scope_is_403_whether_or_not_the_email_exists(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings, session: AsyncSession
) -> None:
    email = await add_email(session)
    reader = bearer(await make_user(scopes=["events:read"]), settings)
    real = await client.get(f"/api/v1/emails/{email.id}", headers=reader)
    made_up = await client.get(f"/api/v1/emails/{uuid.uuid4()}", headers=reader)
    assert real.status_code == made_up.status_code == 403
    assert error_of(real) == error_of(made_up)
    delete_real = await client.delete(f"/api/v1/emails/{email.id}", headers=reader)
    assert delete_real.status_code == 403
    # And the email is still there for someone who may read it.
    admin = bearer(await make_user(scopes=ALL_SCOPES), settings)
    assert (await client.get(f"/api/v1/emails/{email.id}", headers=admin)).status_code == 200
