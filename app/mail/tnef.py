"""The files inside Outlook's winmail.dat (`application/ms-tnef`), read with tnefparse."""

from __future__ import annotations

from tnefparse import TNEF  # type: ignore[import-untyped]

from app.mail.text import PARSE_ERRORS

TNEF_TYPES = ("application/ms-tnef", "application/vnd.ms-tnef")


def is_tnef(content_type: str, filename: str | None) -> bool:
    return content_type in TNEF_TYPES or (filename or "").strip().lower() == "winmail.dat"


def tnef_files(data: bytes) -> list[tuple[str | None, bytes]]:
    """(file name, bytes) of each attachment; [] when the data is not TNEF or unreadable."""
    try:
        container = TNEF(data, do_checksum=False)
        found: list[tuple[str | None, bytes]] = []
        for attachment in container.attachments:
            content = attachment.data
            if not isinstance(content, bytes) or not content:
                continue
            name = attachment.long_filename() or attachment.name
            found.append((name if isinstance(name, str) else None, content))
        return found
    except PARSE_ERRORS:  # ValueError (not TNEF), IndexError (cut short), UnicodeError...
        return []
