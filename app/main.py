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
from sqlalchemy.ext.asyncio import AsyncEngine

from app import health
from app.audience.routes import router as audience_events_router
from app.audience.tasks import process_audience_event
from app.audience.webhook import router as audience_webhook_router
from app.core.config import Settings, load_settings
from app.core.cors import EnvelopeCORSMiddleware
from app.core.errors import register_error_handlers
from app.core.logging import configure_logging
from app.core.middleware import EdgeMiddleware
from app.core.params import API_PREFIX
from app.core.ratelimit import build_limiter
from app.db.session import build_engine, build_ingest_engine, build_session_factory
from app.deliveries.routes import router as deliveries_router
from app.deps import Services
from app.destinations.dispatcher import NotificationDispatcher
from app.destinations.routes import router as destinations_router
from app.emails.feed_routes import router as feed_router
from app.emails.links import router as links_router
from app.emails.routes import router as emails_router
from app.events.routes import router as events_router
from app.mailchimp.routes import router as mailchimp_router
from app.mandrill.routes import mandrill_shortcut
from app.mandrill.routes import router as mandrill_router
from app.mandrill.tasks import process_delivery, process_inbound, reject_invalid
from app.observability import routes as observability
from app.processing.ingest import GroupCommitter, Intake
from app.processing.models import EventKind
from app.processing.tasks import Handler
from app.processing.worker import EventWorker
from app.storage.factory import build_blob_store
from app.users.api_key_routes import router as api_keys_router
from app.users.auth import router as auth_router
from app.users.routes import router as users_router

DISPOSE_TIMEOUT_SECONDS = 5.0
logger = structlog.get_logger("app.main")

# The engine runs what the domains register here, by the kind the webhook gave each event.
HANDLERS: dict[str, Handler] = {
    EventKind.INBOUND: process_inbound,
    EventKind.MESSAGE: process_delivery,
    EventKind.SYNC: process_delivery,
    EventKind.INVALID: reject_invalid,
    EventKind.AUDIENCE: process_audience_event,
}
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


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    async with AsyncExitStack() as stack:
        engine = build_engine(settings)
        stack.push_async_callback(_dispose_engine, engine)
        session_factory = build_session_factory(engine)
        committer = GroupCommitter(build_ingest_engine(engine))
        committer.start()
        stack.push_async_callback(committer.close)

        blob_store = await build_blob_store(settings)
        stack.push_async_callback(blob_store.close)

        worker = EventWorker(
            settings=settings,
            session_factory=session_factory,
            blob_store=blob_store,
            handlers=HANDLERS,
        )
        app.state.services = Services(
            settings=settings,
            engine=engine,
            session_factory=session_factory,
            intake=Intake(committer, worker),
            blob_store=blob_store,
            worker=worker,
        )
        dispatcher = NotificationDispatcher(
            settings=settings, session_factory=session_factory, blob_store=blob_store
        )
        app.state.dispatcher = dispatcher
        if settings.processing_enabled:
            await worker.start()
            stack.push_async_callback(worker.stop)
            await dispatcher.start()
            stack.push_async_callback(dispatcher.stop)
        # ~170,000 objects (FastAPI, pydantic, SQLAlchemy) live as long as the process; a full
        # collection walking them paused every request for ~70 ms, often enough to be the ack
        # path's p99. Frozen, they are left out of every collection from here on.
        gc.collect()
        gc.freeze()
        logger.info(
            "app.started",
            environment=settings.environment.value,
            database=engine.url.get_backend_name(),
            storage=settings.storage_backend.value,
            processing=settings.processing_enabled,
        )
        yield
    logger.info("app.stopped")


async def _dispose_engine(engine: AsyncEngine) -> None:
    # Closing a pooled connection waits on the server: a database that hangs (rather than
    # refusing) must not hang the shutdown. The process exits; the server drops the sockets.
    try:
        async with asyncio.timeout(DISPOSE_TIMEOUT_SECONDS):
            await engine.dispose()
    except TimeoutError:
        logger.warning("app.engine_dispose_timed_out", seconds=DISPOSE_TIMEOUT_SECONDS)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings)
    app = FastAPI(
        title="Kave",
        summary="Durable Mailchimp inbound-email webhook ingestion.",
        version="0.1.0",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=f"{API_PREFIX}/redoc",
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
    app.state.limiter = build_limiter(settings)  # where slowapi looks for it
    register_error_handlers(app)

    # First: routes are matched in order, and this is the one Mailchimp hammers.
    app.include_router(mandrill_router, prefix=API_PREFIX)
    app.include_router(health.router)
    app.include_router(observability.router)
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)

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
        large_body_paths=[webhook_path],
    )
    return app


app = create_app()
