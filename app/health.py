"""Liveness and readiness probes (outside /api/v1, where orchestrators expect them)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import text

from app.core.errors import ERROR_RESPONSES, ServiceUnavailable

router = APIRouter(prefix="/health", tags=["health"])

CHECK_TIMEOUT_SECONDS = 5.0


class HealthStatus(BaseModel):
    status: str
    checks: dict[str, str] = {}


@router.get("/live", response_model=HealthStatus)
async def live() -> HealthStatus:
    return HealthStatus(status="ok")


async def _check_database(request: Request) -> None:
    async with request.app.state.session_factory() as session:
        await session.execute(text("SELECT 1"))


async def _check_storage(request: Request) -> None:
    await request.app.state.blob_store.check()


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
            await asyncio.wait_for(check(request), CHECK_TIMEOUT_SECONDS)
            results[name] = "ok"
        except Exception:  # noqa: BLE001 (any failure means "not ready")
            results[name] = "unavailable"
    failed = [name for name, result in results.items() if result != "ok"]
    if failed:
        raise ServiceUnavailable(
            f"Not ready: {', '.join(failed)} unreachable.",
            details=[{"check": name, "status": results[name]} for name in results],
        )
    return HealthStatus(status="ok", checks=results)
