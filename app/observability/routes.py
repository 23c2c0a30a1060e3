"""`GET /metrics` in the Prometheus text format, outside /api/v1 and the OpenAPI schema."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import SecretStr

from app.core.errors import NotAuthenticated
from app.deps import services
from app.observability.children import merged_exposition, scrape_children
from app.observability.metrics import backlog_registry, read_backlog

# Not rate-limited on purpose: a scraper polls it on a fixed interval.
router = APIRouter(tags=["observability"], include_in_schema=False)


def _require_token(request: Request, expected: SecretStr | None) -> None:
    if expected is None:
        return
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), expected.get_secret_value().encode()
    ):
        raise NotAuthenticated("A valid metrics bearer token is required.")


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    kave = services(request)
    _require_token(request, kave.settings.metrics_token)
    backlog = await read_backlog(kave.session_factory)
    backlog_families = backlog_registry(backlog)
    if kave.worker_children is None:
        own = generate_latest(REGISTRY)
    else:
        texts = await scrape_children(
            kave.worker_children.health_urls, request.headers.get("authorization")
        )
        own = merged_exposition(texts, skip={f.name for f in backlog_families.collect()})
    body = own + generate_latest(backlog_families)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
