"""What the fault tests share: signed batches of mail, posters that retry like Mailchimp, server
processes, and the checks that every acknowledged email is stored once, whole."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aioboto3
import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.emails.models import Attachment, Email
from app.processing.models import WebhookEvent
from app.tests.observability.scrape import Scrape
from app.tests.server_process import ServerProcess, WorkerProcess
from app.tests.support import WEBHOOK_PATH, build_message, inbound_event, signed_form

BlobReader = Callable[[str], Awaitable[bytes | None]]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Mail:
    message_id: str
    attachment_sha256: str


@dataclass(frozen=True, slots=True)
class Batch:
    index: int
    mails: tuple[Mail, ...]
    body: bytes
    headers: dict[str, str]


def make_batches(count: int, size: int, *, tag: str, attachment_bytes: int = 1024) -> list[Batch]:
    """`count` signed batches of `size` inbound emails, each with one random attachment."""
    batches = []
    for b in range(count):
        mails, events = [], []
        for i in range(size):
            message_id = f"{tag}-{b}-{i}-{os.urandom(4).hex()}@faults.kave.test"
            content = os.urandom(attachment_bytes)
            message = build_message(
                subject=f"{tag} batch {b} mail {i}",
                message_id=f"<{message_id}>",
                attachments=[(f"{tag}-{b}-{i}.bin", "application/octet-stream", content)],
            )
            events.append(inbound_event(message))
            mails.append(Mail(message_id, sha256(content)))
        body, headers = signed_form(events)
        batches.append(Batch(b, tuple(mails), body, headers))
    return batches


@dataclass(frozen=True, slots=True)
class Attempt:
    batch: int
    target: str
    started: float
    ended: float
    status: int | None  # None: no HTTP answer (refused, reset, timed out)
    code: str | None  # the error envelope's code, or the transport error's type
    accepted: int = 0
    duplicates: int = 0


@dataclass
class Posters:
    """Deliver batches like Mailchimp: retry whatever did not get a 200, with a pause."""

    deadline: float
    retry_pause: tuple[float, float] = (0.2, 0.5)
    max_tries: int = 400
    attempts: list[Attempt] = field(default_factory=list)
    acked: set[int] = field(default_factory=set)

    async def deliver(
        self, client: httpx.AsyncClient, url: Callable[[], str], batch: Batch
    ) -> bool:
        for _ in range(self.max_tries):
            if time.monotonic() > self.deadline:
                return False
            target = url()
            started = time.monotonic()
            try:
                response = await client.post(
                    target + WEBHOOK_PATH, content=batch.body, headers=batch.headers
                )
            except httpx.TransportError as exc:
                self.attempts.append(
                    Attempt(
                        batch.index, target, started, time.monotonic(), None, type(exc).__name__
                    )
                )
            else:
                ended = time.monotonic()
                if response.status_code == 200:
                    ack = response.json()
                    self.attempts.append(
                        Attempt(
                            batch.index, target, started, ended, 200, None,
                            ack["accepted"], ack["duplicates"],
                        )
                    )  # fmt: skip
                    self.acked.add(batch.index)
                    return True
                code = _error_code(response)
                self.attempts.append(
                    Attempt(batch.index, target, started, ended, response.status_code, code)
                )
            await asyncio.sleep(random.uniform(*self.retry_pause))
        return False

    async def run(
        self,
        batches: Sequence[Batch],
        url: Callable[[], str],
        *,
        concurrency: int,
        pace: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        """Several concurrent posters share the batches; `pace` spreads them over time."""
        queue: asyncio.Queue[Batch] = asyncio.Queue()
        for batch in batches:
            queue.put_nowait(batch)

        async def poster() -> None:
            async with httpx.AsyncClient(timeout=30) as client:
                while not queue.empty():
                    batch = queue.get_nowait()
                    await self.deliver(client, url, batch)
                    await asyncio.sleep(random.uniform(*pace))

        await asyncio.gather(*(poster() for _ in range(concurrency)))

    def statuses(self) -> Counter[str]:
        return Counter(str(a.status or a.code) for a in self.attempts)

    def accepted(self) -> int:
        return sum(a.accepted for a in self.attempts)

    def duplicates(self) -> int:
        return sum(a.duplicates for a in self.attempts)


def _error_code(response: httpx.Response) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


class Servers:
    """Server processes of one test; every one is stopped when the test ends."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[ServerProcess | WorkerProcess] = []

    async def start(
        self, *, name: str, database_url: str, storage_path: Path, **env: str
    ) -> ServerProcess:
        server = ServerProcess(
            database_url=database_url,
            storage_path=storage_path,
            log=self.tmp_path / f"{name}.log",
            **env,
        )
        self.started.append(server)
        return await asyncio.to_thread(server.start)

    async def start_worker(
        self, *, name: str, database_url: str, storage_path: Path, **env: str
    ) -> WorkerProcess:
        worker = WorkerProcess(
            database_url=database_url,
            storage_path=storage_path,
            log=self.tmp_path / f"{name}.log",
            **env,
        )
        self.started.append(worker)
        return await asyncio.to_thread(worker.start)

    def stop_all(self) -> None:
        for server in self.started:
            server.stop_quietly()


async def scrape(server: ServerProcess, token: str | None = None) -> Scrape:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return Scrape(response.text)


def log_events(path: Path) -> list[dict[str, object]]:
    """The JSON lines of a server's log (LOG_FORMAT=json); anything else in it is skipped."""
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return [line for line in lines if isinstance(line, dict)]


def local_blobs(root: Path) -> BlobReader:
    async def read(key: str) -> bytes | None:
        path = root / key
        return await asyncio.to_thread(path.read_bytes) if path.is_file() else None

    return read


@asynccontextmanager
async def s3_blobs(endpoint_url: str, bucket: str) -> AsyncIterator[BlobReader]:
    """A reader on one S3 client, open for the duration of the check."""
    session = aioboto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    async with session.client("s3", endpoint_url=endpoint_url) as client:

        async def read(key: str) -> bytes | None:
            try:
                response = await client.get_object(Bucket=bucket, Key=key)
            except client.exceptions.NoSuchKey:
                return None
            async with response["Body"] as body:
                data: bytes = await body.read()
                return data

        yield read


@dataclass
class StoredReport:
    """How the acknowledged emails ended up in the database and the blob store."""

    expected: int
    rows: int = 0
    missing: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)  # attachments or blobs missing or wrong

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicated or self.unexpected or self.broken)

    def __str__(self) -> str:
        return (
            f"expected={self.expected} rows={self.rows} missing={len(self.missing)} "
            f"duplicated={len(self.duplicated)} unexpected={len(self.unexpected)} "
            f"broken={len(self.broken)} {self.missing[:3]}{self.duplicated[:3]}{self.broken[:3]}"
        )


class FaultDatabase:
    """Read-only checks on the cluster. NullPool: no connection outlives a database restart."""

    def __init__(self, url: str) -> None:
        self.engine = create_async_engine(url, poolclass=NullPool)

    async def close(self) -> None:
        await self.engine.dispose()

    async def rows(self, stmt: Any) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(stmt)).all())

    async def scalar(self, stmt: Any) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(stmt)).scalar_one()

    async def statuses(self) -> dict[str, int]:
        stmt = select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
        return {status: int(n) for status, n in await self.rows(stmt)}

    async def processed(self) -> int:
        return (await self.statuses()).get("processed", 0)

    async def wait_processed(self, expected: int, *, timeout: float) -> dict[str, int]:
        """Poll until `expected` events are processed (bounded); return the statuses seen."""
        deadline = time.monotonic() + timeout
        seen: dict[str, int] = {}
        while time.monotonic() < deadline:
            try:
                seen = await self.statuses()
            except OSError:
                seen = {}
            if seen.get("processed", 0) >= expected:
                return seen
            await asyncio.sleep(0.25)
        return seen

    async def max_attempts(self) -> int:
        return int(await self.scalar(select(func.coalesce(func.max(WebhookEvent.attempts), 0))))

    async def check_emails(
        self,
        mails: Sequence[Mail],
        blobs: BlobReader,
        *,
        only_processed: bool = False,
    ) -> StoredReport:
        """Every mail stored exactly once, with its attachment and blobs (bytes re-hashed).

        `only_processed`: check the emails of processed events only, and expect nothing else
        (used mid-run, when some acknowledged mail is legitimately not processed yet).
        """
        expected = {mail.message_id: mail for mail in mails}
        stmt = (
            select(
                Email.id,
                Email.message_id,
                Email.raw_blob_key,
                Email.raw_sha256,
                WebhookEvent.status,
                Attachment.position,
                Attachment.sha256,
                Attachment.blob_key,
            )
            .join(WebhookEvent, WebhookEvent.id == Email.event_id, isouter=True)
            .join(Attachment, Attachment.email_id == Email.id, isouter=True)
        )
        emails: dict[Any, dict[str, Any]] = {}
        for row in await self.rows(stmt):
            entry = emails.setdefault(
                row.id,
                {
                    "message_id": row.message_id,
                    "raw": (row.raw_blob_key, row.raw_sha256),
                    "status": row.status,
                    "attachments": [],
                },
            )
            if row.position is not None:
                entry["attachments"].append((row.position, row.sha256, row.blob_key))
        report = StoredReport(expected=len(expected), rows=len(emails))
        by_message = Counter(entry["message_id"] for entry in emails.values())
        processed_messages = {
            e["message_id"] for e in emails.values() if e["status"] == "processed"
        }
        for message_id in expected:
            if by_message[message_id] == 0 and not only_processed:
                report.missing.append(message_id)
        report.duplicated = [m for m, n in by_message.items() if n > 1]
        report.unexpected = [m for m in by_message if m not in expected]
        for entry in emails.values():
            mail = expected.get(entry["message_id"])
            if mail is None:
                continue
            if entry["status"] != "processed":
                report.broken.append(f"{mail.message_id}: email row of a {entry['status']} event")
                continue
            problems = await _check_blobs(entry, mail, blobs)
            report.broken.extend(f"{mail.message_id}: {p}" for p in problems)
        if only_processed:
            report.expected = len(processed_messages)
        return report


async def _check_blobs(entry: dict[str, Any], mail: Mail, blobs: BlobReader) -> list[str]:
    problems = []
    attachments = entry["attachments"]
    if [position for position, _, _ in attachments] != [0]:
        problems.append(f"attachment positions {sorted(p for p, _, _ in attachments)}")
    for _, digest, key in attachments:
        data = await blobs(key)
        if digest != mail.attachment_sha256:
            problems.append("attachment sha256 differs from what was sent")
        if data is None:
            problems.append(f"attachment blob {key} missing")
        elif sha256(data) != digest:
            problems.append(f"attachment blob {key} does not hash to its sha256")
    raw_key, raw_digest = entry["raw"]
    raw = await blobs(raw_key) if raw_key else None
    if raw is None or sha256(raw) != raw_digest:
        problems.append(f"raw message blob {raw_key} missing or corrupt")
    return problems
