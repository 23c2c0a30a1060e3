"""What the commands share: reading times from options, printing tables and JSON, progress."""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any

import click
import orjson
import typer
from pydantic import BaseModel

from app.core.times import as_utc
from app.db.base import utcnow

_RELATIVE = re.compile(r"^(\d{1,6})([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
TIME_HELP = "ISO date or time (UTC unless a zone is given) or an age such as 7d, 12h, 30m"


def parse_time(value: str | None) -> datetime | None:
    """`2026-11-01`, `2026-11-01T10:00:00+02:00` or an age (`7d`, `12h`, `30m` ago), as UTC."""
    if value is None:
        return None
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = relative.groups()
        return utcnow() - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date, a time or an age like 7d") from None


def parse_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an id (a UUID)") from None


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
LimitOption = Annotated[
    int, typer.Option("--limit", min=1, max=1000, help="At most this many, newest first.")
]


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def clip(value: str | None, width: int) -> str:
    text = " ".join((value or "").split())  # one line, whatever the header held
    return text if len(text) <= width else text[: width - 1] + "…"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns as wide as their widest cell; the last one is left unpadded."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    for line in [headers, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=False)]
        typer.echo("  ".join([*cells, line[-1]]).rstrip())


def print_json(value: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> None:
    if isinstance(value, BaseModel):
        data: Any = value.model_dump(mode="json", by_alias=True)
    elif isinstance(value, dict):
        data = value
    else:
        data = [item.model_dump(mode="json", by_alias=True) for item in value]
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


@contextmanager
def progress(length: int, label: str) -> Iterator[Any]:
    """A progress bar on stderr (stdout stays the command's report); silent when not a tty."""
    bar: Any = click.progressbar(length=length, label=label, file=sys.stderr)
    with bar:
        yield bar
