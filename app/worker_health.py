"""The tiny HTTP port of `kave worker`: /health/live, /health/ready and /metrics.

A worker serves no API, so a framework would be dead weight: this answers GET and HEAD on
three paths with asyncio's own server. /health/ready checks what the worker needs (the
database at the migrations' head, the blob store); /metrics is this process's own figures
(label them by instance when scraping several workers), behind METRICS_TOKEN when set.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import Callable

import orjson
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import text

from app.core.config import Settings
from app.db.schema import expected_schema_revision
from app.health import CHECK_TIMEOUT_SECONDS
from app.observability.metrics import backlog_registry, read_backlog
from app.worker_runtime import Stores

logger = structlog.get_logger("app.worker_health")

READ_TIMEOUT_SECONDS = 5.0
MAX_HEADER_BYTES = 16 * 1024
JSON = "application/json"


class HealthServer:
    def __init__(self, settings: Settings, stores: Stores, *, port: int, host: str) -> None:
        self.settings = settings
        self.stores = stores
        self.port = port
        self.host = host
        self.worker_running: Callable[[], bool] = lambda: True
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        if self.port == 0:
            return
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        logger.info("worker.health_listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > MAX_HEADER_BYTES:
                raise ValueError("headers too large")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in header_lines if line)
            }
            status, content_type, body = await self._answer(method, path, headers)
        except (ValueError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            status, content_type, body, method = 400, JSON, b'{"status":"bad request"}', "GET"
        try:
            writer.write(
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode("latin-1")
            )
            if method != "HEAD":
                writer.write(body)
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _answer(
        self, method: str, path: str, headers: dict[str, str]
    ) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, JSON, b'{"status":"method not allowed"}'
        path = path.split("?", 1)[0]
        if path == "/health/live":
            ok = bool(self.worker_running())
            return (200 if ok else 503), JSON, orjson.dumps({"status": "ok" if ok else "stopped"})
        if path == "/health/ready":
            checks = await self._checks()
            ok = all(result == "ok" for result in checks.values())
            answer = {"status": "ok" if ok else "unavailable", "checks": checks}
            return (200 if ok else 503), JSON, orjson.dumps(answer)
        if path == "/metrics":
            if not self._authorized(headers.get("authorization", "")):
                return 401, JSON, b'{"status":"a valid metrics bearer token is required"}'
            backlog = await read_backlog(self.stores.session_factory)
            body = generate_latest(REGISTRY) + generate_latest(backlog_registry(backlog))
            return 200, CONTENT_TYPE_LATEST, body
        return 404, JSON, b'{"status":"not found"}'

    def _authorized(self, header: str) -> bool:
        expected = self.settings.metrics_token
        if expected is None:
            return True
        scheme, _, presented = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            presented.strip().encode(), expected.get_secret_value().encode()
        )

    async def _checks(self) -> dict[str, str]:
        async def database() -> str:
            async with self.stores.session_factory() as session:
                revision = await session.scalar(text("SELECT version_num FROM alembic_version"))
            expected = expected_schema_revision()
            return "ok" if expected is None or revision == expected else "not migrated"

        async def storage() -> str:
            await self.stores.blob_store.check()
            return "ok"

        results = {}
        for name, check in (("database", database), ("storage", storage)):
            try:
                results[name] = await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
            except Exception:  # noqa: BLE001 (any failure means "not ready")
                results[name] = "unavailable"
        return results


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}
