"""The edge shortcut is built from the declared webhook route, and refuses what it would skip."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends, FastAPI

from app.core.params import API_PREFIX
from app.mandrill.routes import ShortcutUnsafe, mandrill_shortcut, receive_mandrill_batch
from app.mandrill.routes import router as mandrill_router


async def a_dependency() -> None:
    return None


def test_the_declared_route_is_what_the_shortcut_serves() -> None:
    app = FastAPI()
    app.include_router(mandrill_router, prefix=API_PREFIX)
    key, endpoint = mandrill_shortcut(app, API_PREFIX)
    assert key == ("POST", f"{API_PREFIX}/webhooks/mailchimp")
    assert endpoint is receive_mandrill_batch


def test_a_dependency_on_the_include_refuses_to_start() -> None:
    app = FastAPI()
    app.include_router(mandrill_router, prefix=API_PREFIX, dependencies=[Depends(a_dependency)])
    with pytest.raises(ShortcutUnsafe, match="dependencies"):
        mandrill_shortcut(app, API_PREFIX)


def test_a_dependency_on_the_app_refuses_to_start() -> None:
    app = FastAPI(dependencies=[Depends(a_dependency)])
    app.include_router(mandrill_router, prefix=API_PREFIX)
    with pytest.raises(ShortcutUnsafe, match="the app has dependencies"):
        mandrill_shortcut(app, API_PREFIX)


def test_a_dependency_on_the_route_refuses_to_start() -> None:
    router = APIRouter(prefix=mandrill_router.prefix)
    router.add_api_route(
        "", receive_mandrill_batch, methods=["POST"], dependencies=[Depends(a_dependency)]
    )
    app = FastAPI()
    app.include_router(router, prefix=API_PREFIX)
    with pytest.raises(ShortcutUnsafe, match="dependencies"):
        mandrill_shortcut(app, API_PREFIX)


def test_no_declared_route_refuses_to_start() -> None:
    with pytest.raises(ShortcutUnsafe, match="no POST route"):
        mandrill_shortcut(FastAPI(), API_PREFIX)


def test_another_endpoint_at_the_webhook_path_refuses_to_start() -> None:
    async def impostor() -> None:
        return None

    router = APIRouter(prefix=mandrill_router.prefix)
    router.add_api_route("", impostor, methods=["POST"])
    app = FastAPI()
    app.include_router(router, prefix=API_PREFIX)
    with pytest.raises(ShortcutUnsafe, match="not receive_mandrill_batch"):
        mandrill_shortcut(app, API_PREFIX)
