"""A JupyterHub REST API stand-in with programmable faults, for the culler.

It answers the two calls the culler makes, in JupyterHub's documented
shapes: ``GET /hub/api/users?state=ready`` with ``Accept:
application/jupyterhub-pagination+json`` (``items`` and ``_pagination``
with ``next.url``), and ``DELETE /hub/api/users/:name/server`` and
``.../servers/:name`` (204, or 202 while stopping). Faults are set per
request kind: an HTTP status, a hang, a body that is not JSON, or pages that
shift between requests (as when servers stop during a pass).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


class FakeHubAPI:
    def __init__(self, token: str):
        self.token = token
        self.users: dict[str, dict] = {}
        self.faults: dict[str, list] = {"list": [], "delete": []}
        self.deleted: list[tuple[str, str, bool]] = []
        self.requests: list[tuple[str, str]] = []
        self.shift_pages = False
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

    def add_user(self, name, servers: dict, groups=()):
        self.users[name] = {
            "kind": "user",
            "name": name,
            "groups": list(groups),
            "servers": servers,
        }

    def fail(
        self, kind: str, status: int | None = None, *, times=1, hang=0.0, body=None
    ):
        """The next ``times`` requests of ``kind`` ("list" or "delete") fail."""
        self.faults[kind].extend([(status, hang, body)] * times)

    def _take_fault(self, kind):
        with self._lock:
            return self.faults[kind].pop(0) if self.faults[kind] else None

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, body=None, raw=None):
                data = (
                    raw
                    if raw is not None
                    else (b"" if body is None else json.dumps(body).encode())
                )
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "1")
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
                status, hang, body = fault
                if hang:
                    time.sleep(hang)
                if body is not None:
                    self._reply(status or 200, raw=body)
                elif status:
                    self._reply(status, {"status": status, "message": "injected"})
                else:
                    return False
                return True

            def do_GET(self):
                parts = urlsplit(self.path)
                fake.requests.append(("GET", parts.path))
                if not self._authorized() or self._fault("list"):
                    return
                query = parse_qs(parts.query)
                if parts.path != "/hub/api/users" or query.get("state") != ["ready"]:
                    return self._reply(404, {"status": 404, "message": "Not Found"})
                offset = int(query.get("offset", ["0"])[0])
                limit = int(query.get("limit", ["200"])[0])
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
                        f"?state=ready&offset={offset + limit}&limit={limit}",
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

            def do_DELETE(self):
                path = urlsplit(self.path).path
                fake.requests.append(("DELETE", path))
                if not self._authorized() or self._fault("delete"):
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
