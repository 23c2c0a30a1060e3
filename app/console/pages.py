"""Rendering console pages: the Jinja2 environment, the headers every page carries, formatting.

Every page gets a Content-Security-Policy that allows nothing but Kave itself and no inline
script at all, so neither a mail's contents shown on a page nor a stray template mistake can
run code or call another host.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from app.core.request_context import current_request_id

PREFIX = "/console"
HERE = Path(__file__).resolve().parent

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Frame-Options": "DENY",
    # Pages show mail contents: never kept by a shared or browser cache.
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def format_time(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_bytes(value: int | None) -> str:
    size = float(value or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "none"
    whole = int(seconds)
    if whole < 120:
        return f"{whole} s"
    if whole < 7200:
        return f"{whole // 60} min"
    if whole < 172800:
        return f"{whole // 3600} h"
    return f"{whole // 86400} days"


def _address(value: Any) -> str:
    if isinstance(value, dict):
        email, name = value.get("email") or "", value.get("name")
        return f"{name} <{email}>" if name else str(email)
    return str(value)


templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html", "svg"], default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["when"] = format_time
templates.filters["bytes"] = format_bytes
templates.filters["age"] = format_age
templates.filters["address"] = _address
templates.globals["prefix"] = PREFIX


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    viewer = getattr(request.state, "console_viewer", None)
    body = templates.get_template(template).render(
        request_id=current_request_id(),
        viewer=viewer,
        path=request.url.path,
        **(context or {}),
    )
    return HTMLResponse(body, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


TITLES = {
    400: "The request is not valid",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    409: "Not possible right now",
    413: "Too large",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Unavailable",
}


def render_error(
    request: Request, *, status: int, message: str, headers: Mapping[str, str] | None = None
) -> HTMLResponse:
    title = TITLES.get(status, "Error")
    return render(
        request,
        "error.html",
        {"status": status, "title": title, "message": message},
        status=status,
        headers=headers,
    )
