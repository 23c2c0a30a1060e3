"""Liveness and readiness probes (outside /api/v1, where orchestrators expect them)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from pydantic import BaseModel

from app.core.errors import ERROR_RESPONSES, ServiceUnavailable
from app.db.schema import current_schema_revision, expected_schema_revision
from app.deps import services

router = APIRouter(prefix="/health", tags=["health"])

CHECK_TIMEOUT_SECONDS = 5.0


class HealthStatus(BaseModel):
    status: str
    checks: dict[str, str] = {}


# Monitors probe with HEAD: answered by the GET endpoints (same status and headers; the edge
# drops the body), kept out of the schema as FastAPI documents no body-less variant of a route.
@router.head("/live", response_model=HealthStatus, include_in_schema=False)
@router.get("/live", response_model=HealthStatus)
async def live() -> HealthStatus:
    return HealthStatus(status="ok")


async def _check_database(request: Request) -> str:
    async with services(request).session_factory() as session:
        revision = await current_schema_revision(session)
    expected = expected_schema_revision()
    if expected is not None and revision != expected:
        return "not migrated (run alembic upgrade head)"
    return "ok"


async def _check_storage(request: Request) -> str:
    await services(request).blob_store.check()
    return "ok"


@router.head("/ready", response_model=HealthStatus, include_in_schema=False)
@router.get(
    "/ready",
    response_model=HealthStatus,
    responses={503: ERROR_RESPONSES[500] | {"description": "A dependency is unreachable"}},
)
async def ready(request: Request) -> HealthStatus:
    checks = {"database": _check_database, "storage": _check_storage}
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            results[name] = await asyncio.wait_for(check(request), CHECK_TIMEOUT_SECONDS)
        except Exception:  # noqa: BLE001 (any failure means "not ready")
            results[name] = "unavailable"
    failed = [name for name, result in results.items() if result != "ok"]
    if failed:
        raise ServiceUnavailable(
            f"Not ready: {', '.join(failed)} unreachable.",
            details=[{"check": name, "status": results[name]} for name in results],
        )
    return HealthStatus(status="ok", checks=results)
