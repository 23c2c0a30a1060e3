"""The app factory: wires the domains' routers and task handlers, the engine and the stores.

`uvicorn app.main:app` serves the module-level app built from the environment.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import structlog
from fastapi import FastAPI
from starlette.responses import RedirectResponse

from app import health
from app.apidocs import OPENAPI_TAGS, install_api_docs, short_operation_id
from app.audience.routes import router as audience_events_router
from app.audience.webhook import router as audience_webhook_router
from app.console.app import build_console
from app.console.pages import PREFIX as CONSOLE_PREFIX
from app.core.config import DEVELOPMENT_WEBHOOK_KEY, Settings, load_settings
from app.core.cors import EnvelopeCORSMiddleware
from app.core.errors import register_error_handlers
from app.core.logging import configure_logging
from app.core.middleware import EdgeMiddleware
from app.core.params import API_PREFIX
from app.core.ratelimit import build_rate_counter
from app.db.session import build_ingest_engine
from app.deliveries.routes import router as deliveries_router
from app.deps import EventHints, Services
from app.destinations.routes import router as destinations_router
from app.emails.feed_routes import router as feed_router
from app.emails.links import router as links_router
from app.emails.routes import router as emails_router
from app.events.routes import router as events_router
from app.mailchimp.routes import router as mailchimp_router
from app.mandrill.routes import mandrill_shortcut
from app.mandrill.routes import router as mandrill_router
from app.observability import routes as observability
from app.processing.ingest import GroupCommitter, Intake
from app.processing.wakeups import Notifier
from app.users.api_key_routes import router as api_keys_router
from app.users.auth import router as auth_router
from app.users.routes import router as users_router
from app.worker_children import WorkerChildren
from app.worker_runtime import HANDLERS, build_processing_runtime, open_stores

__all__ = ["HANDLERS", "app", "create_app"]

logger = structlog.get_logger("app.main")

# Every router under the API prefix but the Mandrill webhook's, which is included first.
API_ROUTERS = (
    audience_webhook_router,
    audience_events_router,
    mailchimp_router,
    auth_router,
    # Before the emails router: `/emails/feed` is not an email id.
    feed_router,
    emails_router,
    links_router,
    destinations_router,
    api_keys_router,
    events_router,
    deliveries_router,
    users_router,
)


def processing_mode(settings: Settings) -> str:
    """`off` (acknowledge only), `children` (worker child processes) or `inline`."""
    if not settings.processing_enabled:
        return "off"
    return "children" if settings.worker_processes > 0 else "inline"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    async with AsyncExitStack() as stack:
        stores = await stack.enter_async_context(open_stores(settings))
        committer = GroupCommitter(build_ingest_engine(stores.engine))
        committer.start()
        stack.push_async_callback(committer.close)

        stack.push_async_callback(app.state.rate_counter.close)
        mode = processing_mode(settings)
        runtime = build_processing_runtime(settings, stores, standalone=False)
        hints: EventHints = runtime.worker
        children: WorkerChildren | None = None
        if mode == "inline":
            await runtime.start()
            stack.push_async_callback(runtime.stop)
        else:
            # Workers elsewhere (our children, or other processes) are woken by NOTIFY.
            notifier = Notifier(stores.engine)
            await notifier.start()
            stack.push_async_callback(notifier.stop)
            hints = notifier
        if mode == "children":
            children = WorkerChildren(settings.worker_processes)
            await children.start()
            # Stopped after the committer has flushed (the exit stack runs in reverse).
            stack.push_async_callback(children.stop)
        app.state.services = Services(
            settings=settings,
            engine=stores.engine,
            session_factory=stores.session_factory,
            intake=Intake(committer, hints),
            blob_store=stores.blob_store,
            worker=runtime.worker,
            hints=hints,
            large_bodies=asyncio.Semaphore(settings.large_bodies_at_once),
            worker_children=children,
        )
        # ~170,000 objects (FastAPI, pydantic, SQLAlchemy) live as long as the process; a full
        # collection walking them paused every request for ~70 ms, often enough to be the ack
        # path's p99. Frozen, they are left out of every collection from here on.
        gc.collect()
        gc.freeze()
        logger.info(
            "app.started",
            environment=settings.environment.value,
            database=stores.engine.url.get_backend_name(),
            storage=settings.storage_backend.value,
            processing=mode,
        )
        if settings.uses_development_webhook_key:
            # Public by design (development only): logged so `send-test` or curl can sign.
            logger.warning(
                "mandrill.development_webhook_key",
                webhook_key=DEVELOPMENT_WEBHOOK_KEY,
                webhook_url=settings.mailchimp_webhook_url,
                hint="set MAILCHIMP_WEBHOOK_SECRET to the key from Mailchimp to receive real mail",
            )
        yield
    logger.info("app.stopped")


async def _to_console() -> RedirectResponse:
    return RedirectResponse(f"{CONSOLE_PREFIX}/", status_code=307)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings)
    app = FastAPI(
        title="Kave",
        summary="Durable Mailchimp inbound-email webhook ingestion.",
        version="0.1.0",
        openapi_url=f"{API_PREFIX}/openapi.json",
        openapi_tags=OPENAPI_TAGS,
        generate_unique_id_function=short_operation_id,
        # Served by app/apidocs.py from Kave's own files, not FastAPI's CDN links.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        swagger_ui_parameters={
            "persistAuthorization": True,
            "displayRequestDuration": True,
            "filter": True,
        },
        lifespan=lifespan,
        # A path with a trailing slash is another path: 404, never a redirect (a redirected
        # POST is a signed webhook lost, and the route's answer would be a bare 307).
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.rate_counter = build_rate_counter(settings)
    register_error_handlers(app)

    # First: routes are matched in order, and this is the one Mailchimp hammers.
    app.include_router(mandrill_router, prefix=API_PREFIX)
    app.include_router(health.router)
    install_api_docs(app, settings, API_PREFIX)
    app.include_router(observability.router)
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    # The operator console: HTML pages with their own error pages, sharing the app's state.
    app.add_api_route(CONSOLE_PREFIX, _to_console, methods=["GET"], include_in_schema=False)
    app.mount(CONSOLE_PREFIX, build_console(app.state))

    audience_token = settings.mailchimp_audience_webhook_token
    # Added innermost first: the edge wraps everything else.
    if settings.cors_origins:
        app.add_middleware(
            EnvelopeCORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    webhook_path = f"{API_PREFIX}{mandrill_router.prefix}"
    app.add_middleware(
        EdgeMiddleware,
        max_body_bytes=settings.max_body_bytes,
        api_prefix=API_PREFIX,
        metric_prefixes=[API_PREFIX],
        shortcuts=dict([mandrill_shortcut(app, API_PREFIX)]),
        path_secrets=[audience_token.get_secret_value()] if audience_token else [],
        # The console's test email form takes a whole .eml, attachments and all.
        large_body_paths=[webhook_path, f"{CONSOLE_PREFIX}/test-email"],
    )
    return app


app = create_app()
