"""A JupyterHub REST API stand-in with programmable faults, for the culler.

It answers the calls the culler makes, in JupyterHub's documented shapes:
``GET /hub/api/users?state=ready`` (users with a ready server) and
``?state=inactive`` (users with no server at all) with ``Accept:
application/jupyterhub-pagination+json`` (``items`` and ``_pagination``
with ``next.url``), ``GET /hub/api/users/:name``, ``GET /hub/api/user``
(the token's owner and its ``scopes``), ``DELETE /hub/api/users/:name``,
and ``DELETE /hub/api/users/:name/server`` and ``.../servers/:name`` (204,
or 202 while stopping). Faults are set per request kind ("list", "user",
"delete", "delete_user"): an HTTP status, a hang, a body that is not JSON,
or pages that shift between requests (as when servers stop during a pass).
A page holds at most ``max_limit`` rows, as the hub's ``api_page_max_limit``.
``on_read_user`` changes a user just before it is read alone (as when
someone signs in while the culler works).

A fault's body may be a function of the request's headers, to answer as a
misconfigured proxy does by echoing them (see :func:`echo_headers`), and a
fault may add response headers (a ``Location`` for a 3xx).
:class:`HeaderRecorder` is another origin, which records every request that
reaches it (to see whether a redirect carried the token there).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


def echo_headers(offset: int, filler: bytes = b"."):
    """A fault body: ``offset`` filler bytes, then the request's headers as
    received (``Authorization`` first), as an error page that dumps them."""

    def body(headers) -> bytes:
        lines = [f"Authorization: {headers.get('Authorization')}"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k != "Authorization"]
        return filler * offset + "\r\n".join(lines).encode()

    return body


class HeaderRecorder:
    """An HTTP server on another port (another origin) that records each
    request's method, path and headers, and answers ``200 []``."""

    def __init__(self):
        self.requests: list[tuple[str, str, dict]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _record(self):
                recorder.requests.append((self.command, self.path, dict(self.headers)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"[]")

            do_GET = do_DELETE = do_POST = _record

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()


class FakeHubAPI:
    def __init__(self, token: str):
        self.token = token
        self.users: dict[str, dict] = {}
        self.faults: dict[str, list] = {
            "list": [],
            "delete": [],
            "user": [],
            "delete_user": [],
        }
        self.deleted: list[tuple[str, str, bool]] = []
        self.deleted_users: list[str] = []
        self.scopes = ["list:users", "read:servers", "delete:servers"]
        self.on_read_user: dict[str, object] = {}
        self.requests: list[tuple[str, str]] = []
        self.shift_pages = False
        #: The most rows a page holds (JupyterHub's api_page_max_limit).
        self.max_limit = 200
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hub/api"

    def __enter__(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def add_user(
        self, name, servers: dict, groups=(), *, admin=False, last_activity=None
    ):
        self.users[name] = {
            "kind": "user",
            "name": name,
            "admin": admin,
            "groups": list(groups),
            "last_activity": last_activity,
            "servers": servers,
        }

    @staticmethod
    def active(server: dict) -> bool:
        """Running, starting or stopping: what JupyterHub lists as a server."""
        return bool(server.get("ready") or server.get("pending"))

    def user_model(self, user: dict) -> dict:
        servers = {k: s for k, s in user["servers"].items() if self.active(s)}
        return {**user, "servers": servers}

    def fail(
        self,
        kind: str,
        status: int | None = None,
        *,
        times=1,
        hang=0.0,
        body=None,
        headers=None,
    ):
        """The next ``times`` requests of ``kind`` ("list", "user", "delete",
        "delete_user") fail. ``body``: bytes, or a function of the request's
        headers returning bytes; ``headers``: added to the answer."""
        self.faults[kind].extend([(status, hang, body, headers or {})] * times)

    def _take_fault(self, kind):
        with self._lock:
            return self.faults[kind].pop(0) if self.faults[kind] else None

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, body=None, raw=None, headers=None):
                data = (
                    raw
                    if raw is not None
                    else (b"" if body is None else json.dumps(body).encode())
                )
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "1")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self):
                if self.headers.get("Authorization") != f"token {fake.token}":
                    self._reply(403, {"status": 403, "message": "Forbidden"})
                    return False
                return True

            def _fault(self, kind) -> bool:
                fault = fake._take_fault(kind)
                if fault is None:
                    return False
                status, hang, body, headers = fault
                if hang:
                    time.sleep(hang)
                if callable(body):
                    body = body(self.headers)
                if body is not None:
                    self._reply(status or 200, raw=body, headers=headers)
                elif status:
                    self._reply(
                        status,
                        {"status": status, "message": "injected"},
                        headers=headers,
                    )
                else:
                    return False
                return True

            def do_GET(self):
                parts = urlsplit(self.path)
                fake.requests.append(("GET", self.path))  # with the query
                if not self._authorized():
                    return
                if parts.path == "/hub/api/user":
                    return self._reply(
                        200,
                        {"kind": "service", "name": "culler", "scopes": fake.scopes},
                    )
                if parts.path.startswith("/hub/api/users/"):
                    return self._get_user(unquote(parts.path.split("/")[4]))
                if self._fault("list"):
                    return
                query = parse_qs(parts.query)
                state = query.get("state", [""])[0]
                if parts.path != "/hub/api/users" or state not in {"ready", "inactive"}:
                    return self._reply(404, {"status": 404, "message": "Not Found"})
                offset = int(query.get("offset", ["0"])[0])
                limit = min(int(query.get("limit", ["50"])[0]), fake.max_limit)
                if state == "inactive":
                    ready = [
                        fake.user_model(u)
                        for u in fake.users.values()
                        if not any(fake.active(s) for s in u["servers"].values())
                    ]
                else:
                    ready = [
                        {
                            **u,
                            "servers": {
                                k: s for k, s in u["servers"].items() if s.get("ready")
                            },
                        }
                        for u in fake.users.values()
                        if any(s.get("ready") for s in u["servers"].values())
                    ]
                if fake.shift_pages and offset:
                    offset -= 1  # a user of the last page shows up again
                items = ready[offset : offset + limit]
                nxt = None
                if offset + limit < len(ready):
                    nxt = {
                        "offset": offset + limit,
                        "limit": limit,
                        "url": f"http://127.0.0.1:{fake._server.server_address[1]}/hub/api/users"
                        f"?state={state}&offset={offset + limit}&limit={limit}",
                    }
                self._reply(
                    200,
                    {
                        "items": items,
                        "_pagination": {
                            "offset": offset,
                            "limit": limit,
                            "total": len(ready),
                            "next": nxt,
                        },
                    },
                )

            def _get_user(self, name):
                if self._fault("user"):
                    return
                change = fake.on_read_user.pop(name, None)
                if change is not None:
                    change(fake.users[name])
                user = fake.users.get(name)
                if user is None:
                    return self._reply(404, {"status": 404, "message": "Not Found"})
                self._reply(200, fake.user_model(user))

            def _delete_user(self, name):
                if self._fault("delete_user"):
                    return
                if name not in fake.users:
                    return self._reply(404, {"status": 404, "message": "Not Found"})
                if "delete:users" not in fake.scopes:
                    return self._reply(403, {"status": 403, "message": "Forbidden"})
                del fake.users[name]
                fake.deleted_users.append(name)
                self._reply(204)

            def do_DELETE(self):
                path = urlsplit(self.path).path
                fake.requests.append(("DELETE", path))
                if not self._authorized():
                    return
                if path.count("/") == 4:  # /hub/api/users/<name>
                    return self._delete_user(unquote(path.split("/")[4]))
                if self._fault("delete"):
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                parts = [unquote(p) for p in path.split("/")]
                # /hub/api/users/<name>/server or /hub/api/users/<name>/servers/<server>
                name = parts[4]
                server = parts[6] if len(parts) > 6 else ""
                user = fake.users.get(name)
                if user is None or server not in user["servers"]:
                    return self._reply(
                        404, {"status": 404, "message": "no such server"}
                    )
                fake.deleted.append((name, server, bool(body.get("remove"))))
                user["servers"][server] = {**user["servers"][server], "ready": False}
                self._reply(204)

        return Handler
