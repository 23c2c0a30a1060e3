"""The management API documents itself: models, errors, examples and the OAuth2 scheme."""

from __future__ import annotations

from typing import Any

import httpx

from app.core.security import SCOPES

MANAGEMENT_PREFIXES = (
    "/api/v1/auth",
    "/api/v1/emails",
    "/api/v1/attachments",
    "/api/v1/events",
    "/api/v1/deliveries",
    "/api/v1/stats",
    "/api/v1/users",
)
BINARY_ROUTES = {"/api/v1/emails/{email_id}/raw", "/api/v1/attachments/{attachment_id}/content"}


def _schema_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


async def test_every_route_documents_model_errors_and_example(client: httpx.AsyncClient) -> None:
    spec: dict[str, Any] = (await client.get("/api/v1/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    operations = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        if path.startswith(MANAGEMENT_PREFIXES)
        for method, operation in item.items()
    ]
    assert len(operations) == 17  # with GET /emails/feed
    for path, method, operation in operations:
        where = f"{method.upper()} {path}"
        responses = operation["responses"]
        success = next(code for code in responses if code.startswith("2"))
        errors = [code for code in responses if code[0] in "45"]
        assert {"401", "500"} <= set(errors), where
        for code in errors:
            ref = responses[code]["content"]["application/json"]["schema"]["$ref"]
            assert _schema_name(ref) == "ErrorEnvelope", where
        if success == "204":
            continue
        content = responses[success]["content"]
        if path in BINARY_ROUTES:
            assert next(iter(content.values()))["schema"]["format"] == "binary", where
            continue
        model = _schema_name(content["application/json"]["schema"]["$ref"])
        assert schemas[model].get("examples"), f"{where}: {model} has no example"


async def test_oauth2_password_scheme_with_every_scope(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/v1/openapi.json")).json()
    scheme = spec["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    flow = scheme["flows"]["password"]
    assert flow["tokenUrl"] == "/api/v1/auth/token"
    assert flow["scopes"] == SCOPES
    replay = spec["paths"]["/api/v1/events/{event_id}/replay"]["post"]
    assert replay["security"] == [{"OAuth2PasswordBearer": ["events:replay"]}]


async def test_docs_page_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/docs")
    assert response.status_code == 200
    init = await client.get("/api/v1/docs/swagger-init.js")
    assert '"persistAuthorization": true' in init.text
