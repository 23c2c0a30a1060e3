"""Large webhook bodies: decoded as they stream in, checked from the spool, read back if authentic.

An unsigned 60 MB body used to cost three copies of itself in memory (the body, the decoder's
translation, the decoded value) before its signature was found wrong; four at once took the
process from 135 to ~790 MB. A body over STREAM_THRESHOLD_BYTES (declared, or streamed
without a Content-Length) is decoded chunk by chunk instead, its decoded values kept in memory
only up to SPOOL_MEMORY_BYTES and in an anonymous temporary file beyond. The signature,
HMAC-SHA1 over the URL and each field's name and value sorted by name, is computed in a thread
from the spool; only an authentic form is read back into memory, as exactly the fields
`parse_form` gives, and goes on as a small one does. Below the threshold nothing changes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing

from app.core.form_stream import FieldNameTooLong, FormDecoder
from app.core.forms import TooManyFields
from app.mandrill.errors import InvalidSignature
from app.mandrill.form import MAX_FORM_FIELDS, TOO_MANY_FIELDS, FormParams, parse_form
from app.mandrill.signature import provided_signature, verify_mandrill_signature
from app.processing.ingest import offload_if_large

STREAM_THRESHOLD_BYTES = 1024 * 1024
SPOOL_MEMORY_BYTES = 1024 * 1024
FEED_BYTES = 64 * 1024  # decoded in one go (~0.3 ms) before other requests get a turn
# Mandrill sends one field, `mandrill_events`; a name this long is not a Mandrill webhook.
MAX_NAME_BYTES = 4096

BodyStream = AsyncGenerator[bytes, None]


class SpooledForm:
    """A decoded large form whose values may be on disk; `close` releases the file."""

    def __init__(self, decoder: FormDecoder) -> None:
        self.spool = decoder.spool
        self.fields = decoder.fields

    @property
    def on_disk(self) -> bool:
        return self.spool.on_disk

    def params(self) -> FormParams:
        return [(name, self.spool.read(start, end)) for name, start, end in self.fields]

    def signatures(self, keys: Sequence[bytes], url: str) -> list[bytes]:
        """X-Mandrill-Signature for each key, read from the spool in one pass."""
        macs = [hmac.new(key, url.encode("utf-8"), hashlib.sha1) for key in keys]
        for name, start, end in sorted(self.fields, key=lambda field: field[0]):
            for chunk in itertools.chain((name,), self.spool.chunks(start, end)):
                for mac in macs:
                    mac.update(chunk)
        return [base64.b64encode(mac.digest()) for mac in macs]

    def close(self) -> None:
        self.spool.close()


async def read_streamed(stream: BodyStream) -> tuple[FormParams | SpooledForm, int]:
    """The form of a body of unknown or large size, and the body's size.

    What fits under the threshold is parsed as the small path parses it; the rest is decoded
    as it arrives. The body is always read to its end (or until the edge's limit stops it),
    so even a form refused for its shape is answered after the client has sent it.
    """
    async with aclosing(stream):
        chunks: list[bytes] = []
        size = 0
        async for chunk in stream:
            chunks.append(chunk)
            size += len(chunk)
            if size > STREAM_THRESHOLD_BYTES:
                break
        else:
            body = b"".join(chunks)
            del chunks
            return await offload_if_large(size, parse_form, body), size
        return await _decode_streamed(stream, chunks, size)


async def _feed(decoder: FormDecoder, chunk: bytes) -> None:
    """Decode `chunk` FEED_BYTES at a time, letting other requests run in between (a server
    hands over up to a few hundred KiB at once: several large bodies would stall the loop)."""
    for start in range(0, len(chunk), FEED_BYTES):
        if start:
            await asyncio.sleep(0)
        decoder.feed(chunk if len(chunk) <= FEED_BYTES else chunk[start : start + FEED_BYTES])
    if decoder.spool.flush_due:
        await asyncio.to_thread(decoder.spool.flush)


async def _decode_streamed(
    stream: BodyStream, chunks: list[bytes], size: int
) -> tuple[SpooledForm, int]:
    decoder = FormDecoder(
        max_fields=MAX_FORM_FIELDS, max_name_bytes=MAX_NAME_BYTES, memory_bytes=SPOOL_MEMORY_BYTES
    )
    spool = decoder.spool
    try:
        chunks.reverse()
        while chunks:  # each chunk dropped once decoded: never the read and decoded bytes both
            await _feed(decoder, chunks.pop())
            await asyncio.sleep(0)
        async for chunk in stream:
            size += len(chunk)
            await _feed(decoder, chunk)
        try:
            decoder.close()
        except TooManyFields as exc:
            raise InvalidSignature(TOO_MANY_FIELDS) from exc
        except FieldNameTooLong as exc:
            raise InvalidSignature("A form field name is too long for a Mandrill webhook.") from exc
        await asyncio.to_thread(spool.flush, final=True)
    except BaseException:
        spool.close()
        raise
    return SpooledForm(decoder), size


async def verify_spooled(
    form: SpooledForm, *, signature: str | None, url: str, keys: Sequence[bytes]
) -> tuple[bool, FormParams]:
    """`verify_mandrill_signature` for a spooled form, then its fields, read back only when
    authentic. Raises InvalidSignature before anything is read back into memory."""
    try:
        if not form.on_disk:  # small once decoded: exactly the small path's check
            params = form.params()
            authentic = verify_mandrill_signature(
                signature=signature, url=url, params=params, keys=keys
            )
            return authentic, params
        provided = provided_signature(signature)
        # Values past SPOOL_MEMORY_BYTES are never Mandrill's setup check (`mandrill_events=[]`).
        expected = await asyncio.to_thread(form.signatures, keys, url)
        if not any([hmac.compare_digest(provided, e) for e in expected]):  # noqa: C419
            raise InvalidSignature()
        return True, await asyncio.to_thread(form.params)
    finally:
        form.close()
