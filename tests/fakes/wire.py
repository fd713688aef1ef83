"""HTTP plumbing of the fakes: parsed requests, replies and the request handler.

Responses are HTTP/1.1 with ``Content-Length`` (none on 204/304), so clients may
keep connections alive as they would against the real services.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit


class Reply(NamedTuple):
    status: int
    body: bytes = b""
    headers: dict | None = None


def json_reply(status: int, obj, headers: dict | None = None) -> Reply:
    body = json.dumps(obj).encode()
    return Reply(
        status,
        body,
        {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
    )


def html_reply(status: int, text: str, headers: dict | None = None) -> Reply:
    content_type = {"Content-Type": "text/html; charset=utf-8"}
    return Reply(status, text.encode(), {**content_type, **(headers or {})})


@dataclass
class Request:
    method: str
    path: str  # without the query
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: bytes = b""

    @property
    def form(self) -> dict[str, str]:
        """The ``application/x-www-form-urlencoded`` body."""
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), True))

    @classmethod
    def read(cls, handler: BaseHTTPRequestHandler) -> Request:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        query = dict(parse_qsl(parts.query, True))
        return cls(handler.command, parts.path, query, headers, body)


def send(handler: BaseHTTPRequestHandler, reply: Reply):
    has_body = reply.status not in (204, 304)
    try:
        handler.send_response(reply.status)
        for name, value in (reply.headers or {}).items():
            handler.send_header(name, value)
        if has_body:
            handler.send_header("Content-Length", str(len(reply.body)))
        handler.end_headers()
        if has_body:
            handler.wfile.write(reply.body)
    except OSError:  # the client went away (e.g. it timed out)
        handler.close_connection = True


class Handler(BaseHTTPRequestHandler):
    """Hands every request to ``self.fake._handle``; subclassed per fake."""

    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections close eventually
    fake: Any

    def setup(self):
        super().setup()
        self.fake._connections.add(self.connection)

    def finish(self):
        self.fake._connections.discard(self.connection)
        super().finish()

    def _any(self):
        self.fake._handle(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    def log_message(self, format, *args):
        pass
