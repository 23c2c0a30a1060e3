"""The urlencoded decoder for large bodies: decoded as they stream in, values spooled to disk.

`app.core.forms.parse_urlencoded` wants the whole body in memory and costs two copies of it
more while it decodes, before anyone knows whether the request is authentic. Large bodies are
decoded here chunk by chunk instead, into one `FormSpool`: the first `memory_bytes` of decoded
values in memory, the rest in an anonymous temporary file. The fields are exactly
`parse_urlencoded(body)`'s: each value is decoded by the same function, in segments cut only
outside a `%XX` escape (a `%` among a segment's last two bytes waits for the next chunk; every
other `%` decides from the two bytes after it), and `+`, `&` and `=` need no context.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO

from app.core.forms import TooManyFields, unquote_plus_bytes

READ_BYTES = 256 * 1024


class FieldNameTooLong(ValueError):
    pass


class FormSpool:
    """Decoded bytes, appended in order and read back by offset.

    Held in memory until they pass `memory_bytes`; from then on in an anonymous temporary file
    (unlinked at creation, so nothing is left behind whatever happens to the process), with
    at most about `memory_bytes` waiting in memory to be written. `flush` does the file I/O and
    is meant to run in a thread; nothing else touches the disk but `read` and `chunks`.
    """

    def __init__(self, memory_bytes: int) -> None:
        self.memory_bytes = memory_bytes
        self.size = 0
        self._pending = bytearray()  # all of it while in memory; else what waits for `flush`
        self._file: IO[bytes] | None = None

    @property
    def on_disk(self) -> bool:
        return self._file is not None

    @property
    def flush_due(self) -> bool:
        return len(self._pending) > self.memory_bytes

    def append(self, data: bytes) -> None:
        self._pending += data
        self.size += len(data)

    def flush(self, *, final: bool = False) -> None:
        """Write what waits to the file (creating it): when due, or everything when `final`."""
        if not (self.flush_due or (final and self._file is not None and self._pending)):
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by `close`)
        self._file.write(self._pending)
        self._pending = bytearray()

    def read(self, start: int, end: int) -> bytes:
        if self._file is None:
            return bytes(self._pending[start:end])
        self.flush(final=True)
        self._file.seek(start)
        return self._file.read(end - start)

    def chunks(self, start: int, end: int) -> Iterator[bytes]:
        for offset in range(start, end, READ_BYTES):
            yield self.read(offset, min(offset + READ_BYTES, end))

    def close(self) -> None:
        self._pending = bytearray()
        if self._file is not None:
            self._file.close()


class FormDecoder:
    """Feed it the body chunk by chunk, then `close`; `fields` are (name, start, end) of each
    value in `spool`, in body order, blank values kept and empty pieces skipped.

    Names stay in memory, so a name longer than `max_name_bytes` ends decoding, as do more
    than `max_fields` pieces: the rest of the body is only counted and `close` raises the error.
    """

    def __init__(self, *, max_fields: int, max_name_bytes: int, memory_bytes: int) -> None:
        self.max_fields = max_fields
        self.max_name_bytes = max_name_bytes
        self.spool = FormSpool(memory_bytes)
        self.fields: list[tuple[bytes, int, int]] = []
        self.error: ValueError | None = None
        self._pieces = 1
        self._name = bytearray()
        self._in_value = False  # past the piece's `=`
        self._value_start = 0
        self._tail = b""  # a value's last bytes that may be the start of an escape

    def feed(self, chunk: bytes) -> None:
        if self.error is not None:
            return
        try:
            self._feed(chunk)
        except (TooManyFields, FieldNameTooLong) as exc:
            self.error = exc
            self._name = bytearray()
            self._tail = b""

    def close(self) -> None:
        if self.error is None and self._in_value:
            self._value(self._tail)
        if self.error is None:
            self._end_piece()
        if self.error is not None:
            raise self.error

    def _feed(self, chunk: bytes) -> None:
        pos, size = 0, len(chunk)
        while pos < size:
            amp = chunk.find(b"&", pos)
            stop = size if amp == -1 else amp
            if not self._in_value:
                eq = chunk.find(b"=", pos, stop)
                self._add_name(chunk[pos : stop if eq == -1 else eq])
                if eq != -1:
                    self._in_value = True
                    self._value_start = self.spool.size
                    pos = eq + 1
                    continue
            elif amp == -1:
                segment = self._tail + chunk[pos:]
                cut = segment.find(b"%", len(segment) - 2)
                if cut == -1:
                    self._tail = b""
                else:
                    segment, self._tail = segment[:cut], segment[cut:]
                self._value(segment)
            else:
                self._value(self._tail + chunk[pos:amp])
                self._tail = b""
            if amp == -1:
                return
            self._end_piece()
            self._next_piece()
            pos = amp + 1

    def _add_name(self, raw: bytes) -> None:
        self._name += raw
        if len(self._name) > self.max_name_bytes:
            raise FieldNameTooLong(f"a form field name is longer than {self.max_name_bytes} bytes")

    def _value(self, segment: bytes) -> None:
        if segment:
            self.spool.append(unquote_plus_bytes(segment))

    def _end_piece(self) -> None:
        if self._in_value or self._name:
            start = self._value_start if self._in_value else self.spool.size
            self.fields.append((unquote_plus_bytes(bytes(self._name)), start, self.spool.size))

    def _next_piece(self) -> None:
        self._pieces += 1
        if self._pieces > self.max_fields:  # as parse_urlencoded counts: every `&` opens a piece
            raise TooManyFields(f"more than {self.max_fields} form fields")
        self._name = bytearray()
        self._in_value = False
