"""A local stand-in for the Mailchimp Marketing API's list-webhook endpoints.

It speaks the same paths, JSON shapes, status codes and problem+json errors as
`https://<dc>.api.mailchimp.com/3.0`, checks basic auth like Mailchimp does, and records every
request so a test can show exactly what the real `mailchimp-marketing` client sent.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_WEBHOOKS = re.compile(r"^/3\.0/lists/([^/]+)/webhooks(?:/([^/]+))?$")


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    json: Any

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        value = self.headers.get("authorization", "")
        if not value.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(value[6:]).decode().partition(":")
        return user, password


@dataclass
class MailchimpDouble:
    api_key: str
    lists: set[str]
    base_url: str = ""
    requests: list[RecordedRequest] = field(default_factory=list)
    webhooks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _problem(status: int, title: str, detail: str) -> dict[str, Any]:
    return {
        "type": "https://mailchimp.com/developer/marketing/docs/errors/",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": str(uuid.uuid4()),
    }


def _handler(double: MailchimpDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any = None, *, problem: bool = False) -> None:
            self.send_response(status)
            if body is None:
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = json.dumps(body).encode()
            ctype = "application/problem+json" if problem else "application/json; charset=utf-8"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            with double.lock:
                double.requests.append(
                    RecordedRequest(
                        method=self.command,
                        path=self.path,
                        headers={k.lower(): v for k, v in self.headers.items()},
                        json=body,
                    )
                )
            expected = "Basic " + base64.b64encode(f"user:{double.api_key}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                self._send(
                    401,
                    _problem(
                        401,
                        "API Key Invalid",
                        "Your API key may be invalid, or you've attempted to access the wrong "
                        "datacenter.",
                    ),
                    problem=True,
                )
                return
            match = _WEBHOOKS.match(self.path.split("?")[0])
            if match is None or match.group(1) not in double.lists:
                self._send(
                    404,
                    _problem(
                        404,
                        "Resource Not Found",
                        "The requested resource could not be found.",
                    ),
                    problem=True,
                )
                return
            list_id, webhook_id = match.groups()
            with double.lock:
                hooks = double.webhooks.setdefault(list_id, [])
                if self.command == "POST" and webhook_id is None:
                    if any(h["url"] == body.get("url") for h in hooks):
                        self._send(
                            400,
                            _problem(
                                400,
                                "Invalid Resource",
                                "The resource submitted could not be validated.",
                            )
                            | {"errors": [{"field": "url", "message": "URL already exists"}]},
                            problem=True,
                        )
                        return
                    hook = {
                        "id": uuid.uuid4().hex[:10],
                        "url": body["url"],
                        "events": body.get("events", {}),
                        "sources": body.get("sources", {}),
                        "list_id": list_id,
                        "_links": [],
                    }
                    hooks.append(hook)
                    self._send(200, hook)
                elif self.command == "GET" and webhook_id is None:
                    self._send(
                        200,
                        {
                            "webhooks": hooks,
                            "list_id": list_id,
                            "total_items": len(hooks),
                            "_links": [],
                        },
                    )
                elif self.command == "DELETE" and webhook_id is not None:
                    if not any(h["id"] == webhook_id for h in hooks):
                        self._send(
                            404,
                            _problem(
                                404,
                                "Resource Not Found",
                                "The requested resource could not be found.",
                            ),
                            problem=True,
                        )
                        return
                    double.webhooks[list_id] = [h for h in hooks if h["id"] != webhook_id]
                    self._send(204)
                else:
                    self._send(405, _problem(405, "Method Not Allowed", "Nope."), problem=True)

        do_GET = do_POST = do_DELETE = do_PATCH = _handle

    return Handler


class MailchimpServer:
    """Serves a `MailchimpDouble` on 127.0.0.1 and a free port in a background thread."""

    def __init__(self, double: MailchimpDouble) -> None:
        self.double = double
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(double))
        self.server.daemon_threads = True
        host, port = self.server.server_address[:2]
        double.base_url = f"http://{host!s}:{port}/3.0"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> MailchimpDouble:
        self.thread.start()
        return self.double

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
