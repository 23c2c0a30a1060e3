"""The API's documentation pages, served by Kave itself: they work with no internet.

Swagger UI and ReDoc come from the files the `fastapi-offline` package ships (their licences are
in that package), mounted under `<prefix>/docs/static`; this is FastAPI's self-hosting recipe,
with one change: Swagger UI's start-up script is a file too, not inline, so the pages' CSP can
say `script-src 'self'` (app/core/middleware.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

from app.core.config import Settings
from app.mandrill.form import EVENTS_FIELD
from app.mandrill.signature import SETUP_CHECK_KEY, mandrill_signature

STATIC_FILES = Path(fastapi_offline.__file__).parent / "static"

# In this order in the docs; a tag not listed comes after these.
OPENAPI_TAGS: list[dict[str, Any]] = [
    {"name": "auth", "description": "OAuth2 password flow: a bearer token with scopes."},
    {"name": "emails", "description": "Received emails, their raw message and attachments."},
    {"name": "events", "description": "Webhook events as stored, their state, and replay."},
    {
        "name": "destinations",
        "description": "Where processed mail goes: signed notifications, attempts, replay, "
        "recover (destinations:admin).",
    },
    {"name": "api-keys", "description": "Keys for machines: `Authorization: Bearer kave_...`."},
    {"name": "audience events", "description": "Mailchimp Marketing audience events."},
    {"name": "users", "description": "Management users and their scopes (users:admin)."},
    {
        "name": "webhooks",
        "description": "What Mailchimp posts: Mandrill inbound batches and audience events.",
    },
    {"name": "mailchimp", "description": "Registering audience webhooks at Mailchimp."},
    {
        "name": "links",
        "description": "Signed, expiring download links from notifications (no token needed).",
    },
    {"name": "health", "description": "Liveness and readiness probes."},
]


def short_operation_id(route: APIRoute) -> str:
    """The endpoint function's name (`list_emails`), not FastAPI's name + path + method."""
    return route.name


def _page(title: str, head: str, body: str) -> HTMLResponse:
    html = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n{head}</head>\n<body>\n{body}</body>\n</html>\n"
    )
    return HTMLResponse(html)


def install_api_docs(app: FastAPI, settings: Settings, prefix: str) -> None:
    """Swagger UI at `<prefix>/docs`, ReDoc at `<prefix>/redoc`, their files from Kave."""
    docs, static = f"{prefix}/docs", f"{prefix}/docs/static"
    init_script = f"{docs}/swagger-init.js"
    app.mount(static, StaticFiles(directory=STATIC_FILES), name="docs-static")
    _add_webhook_example(app, settings, f"{prefix}/webhooks/mailchimp")

    @app.get(docs, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(
            f"{app.title} API",
            f'<link rel="stylesheet" href="{root}{static}/swagger-ui.css">\n'
            f'<link rel="icon" href="{root}{static}/favicon.png">\n',
            '<div id="swagger-ui"></div>\n'
            f'<script src="{root}{static}/swagger-ui-bundle.js"></script>\n'
            f'<script src="{root}{init_script}"></script>\n',
        )

    @app.get(init_script, include_in_schema=False)
    async def swagger_init(request: Request) -> Response:
        options = {
            "url": f"{request.scope.get('root_path', '')}{app.openapi_url}",
            "dom_id": "#swagger-ui",
            "layout": "BaseLayout",
            "deepLinking": True,
            # Swagger UI's default asks validator.swagger.io for a badge: another host.
            "validatorUrl": None,
            **app.swagger_ui_parameters,  # type: ignore[dict-item]
        }
        script = (
            f"window.ui = SwaggerUIBundle(Object.assign({json.dumps(options)}, "
            "{presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset]}"
            "));\n"
        )
        return Response(script, media_type="text/javascript")

    @app.get(f"{prefix}/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(
            f"{app.title} API - ReDoc",
            f'<link rel="icon" href="{root}{static}/favicon.png">\n',
            f'<redoc spec-url="{root}{app.openapi_url}"></redoc>\n'
            f'<script src="{root}{static}/redoc.standalone.js"></script>\n',
        )


def _add_webhook_example(app: FastAPI, settings: Settings, webhook_path: str) -> None:
    """The Mandrill webhook's header example: the URL check's signature for this server, so
    Try it out sends a request Kave accepts (and stores nothing)."""
    params = [(EVENTS_FIELD, "[]")]
    signature = mandrill_signature(SETUP_CHECK_KEY, settings.mailchimp_webhook_url, params)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            operation = schema["paths"].get(webhook_path, {}).get("post", {})
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "X-Mandrill-Signature":
                    parameter["example"] = signature
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
