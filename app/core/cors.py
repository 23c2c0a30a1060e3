"""CORS from CORS_ORIGINS, with a refused preflight answered in the error envelope.

Starlette answers a preflight it refuses (an origin not in CORS_ORIGINS, a method or header
not allowed) with a plain-text 400. It is a refusal by policy of a well-formed request, so
here it is a 403 `cors_not_allowed` in the envelope, `details` naming what was refused, with
Starlette's CORS headers kept (no Access-Control-Allow-Origin, so the browser blocks it).
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from app.core.errors import error_response

_REFUSED_PREFIX = "Disallowed CORS "


class EnvelopeCORSMiddleware(CORSMiddleware):
    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        text = bytes(response.body).decode("utf-8", "replace")
        refused = text.removeprefix(_REFUSED_PREFIX).split(", ") if _REFUSED_PREFIX in text else []
        headers = {
            name: value
            for name, value in response.headers.items()
            if name not in ("content-length", "content-type")
        }
        return error_response(
            403,
            "cors_not_allowed",
            "This cross-origin request is not allowed.",
            details=[{"refused": what} for what in refused],
            headers=headers,
        )
