"""FakeProvider: what every fake identity provider shares.

- A ``ThreadingHTTPServer`` on 127.0.0.1 (free port) in a daemon thread; ``start()``
  / ``stop()`` or ``with``; ``url`` is ``http://127.0.0.1:PORT``. ``stop()`` wakes
  handlers that are sleeping and drops open connections; ``start()`` after
  ``stop()`` serves the same port again (an outage in between: connection refused).
- ``latency`` seconds slept before answering every request (concurrent requests
  overlap), ``calls`` (method, path) log, ``count()``, ``reset_calls()``.
- Faults: ``fail()``, ``hang()``, ``recover()``. A primary rate limit carries
  GitHub's documented headers (``X-RateLimit-Remaining: 0``, ``X-RateLimit-Reset``
  ...), a 429 (or a given ``retry_after``) carries ``Retry-After``; bodies come from
  ``_fault_body``, which providers override with their documented shapes.
- The OAuth authorization server (browser step, codes, tokens, ``revoke()``) from
  ``oauth.OAuthServer``; providers add ``_route`` for their own endpoints.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import ThreadingHTTPServer

from .oauth import Grant, OAuthServer
from .wire import Handler, Reply, Request, json_reply, send


@dataclass
class Fault:
    kind: str  # "fail" or "hang"
    remaining: int | None  # None: until recover()
    paths: str | None
    status: int = 0
    rate_limit: bool = False
    retry_after: int | None = None
    seconds: float = 0.0


class FakeProvider(OAuthServer):
    """Base of the fakes: a local HTTP server with latency, faults and a call log."""

    def __init__(
        self,
        *,
        client_id: str = "fake-client-id",
        client_secret: str = "fake-client-secret",
        latency: float = 0.0,
    ):
        self.client_id = client_id
        self.client_secret = client_secret
        self.latency = latency
        self.calls: list[tuple[str, str]] = []
        self.url = ""
        self._lock = threading.RLock()
        self._accounts: dict = {}
        self._grants: dict[str, Grant] = {}
        self._faults: list[Fault] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # -- lifecycle -----------------------------------------------------------------

    def start(self):
        handler = type("Handler", (Handler,), {"fake": self})
        self._stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self._port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        for conn in list(self._connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- call log ------------------------------------------------------------------

    def reset_calls(self):
        with self._lock:
            self.calls.clear()

    def count(self, path_prefix: str = "", method: str | None = None) -> int:
        """Requests received whose path starts with ``path_prefix``."""
        with self._lock:
            return sum(
                1
                for m, p in self.calls
                if p.startswith(path_prefix) and method in (None, m)
            )

    # -- faults --------------------------------------------------------------------

    def fail(
        self,
        status: int,
        *,
        times: int | None = None,
        paths: str | None = None,
        rate_limit: bool = False,
        retry_after: int | None = None,
    ):
        """Answer ``status`` to matching requests, ``times`` times or until
        ``recover()``. They match when their path starts with ``paths``; by default
        every request but the browser authorize page matches."""
        fault = Fault("fail", times, paths, status, rate_limit, retry_after)
        with self._lock:
            self._faults.append(fault)

    def hang(
        self, seconds: float, *, times: int | None = None, paths: str | None = None
    ):
        """Sleep ``seconds`` (on top of ``latency``) before answering, then answer
        normally: client timeouts. Matching as for ``fail()``."""
        with self._lock:
            self._faults.append(Fault("hang", times, paths, seconds=seconds))

    def recover(self):
        """Clear every fault."""
        with self._lock:
            self._faults.clear()

    def _take_faults(self, path: str) -> dict[str, Fault]:
        """The first matching fault of each kind, each using up one of its times."""
        taken: dict[str, Fault] = {}
        with self._lock:
            for fault in self._faults:
                if fault.kind in taken:
                    continue
                if fault.paths is None:
                    if path == self.authorize_path:
                        continue
                elif not path.startswith(fault.paths):
                    continue
                taken[fault.kind] = fault
                if fault.remaining is not None:
                    fault.remaining -= 1
            self._faults = [f for f in self._faults if f.remaining != 0]
        return taken

    def _fault_reply(self, req: Request, fault: Fault) -> Reply:
        headers = {}
        if fault.rate_limit:
            reset = int(time.time()) + (fault.retry_after or 60)
            headers = {
                "X-RateLimit-Limit": "5000",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Used": "5000",
                "X-RateLimit-Reset": str(reset),
                "X-RateLimit-Resource": "core",
            }
        if fault.status == 429 or fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after or 60)
        return json_reply(fault.status, self._fault_body(req, fault), headers)

    def _fault_body(self, req: Request, fault: Fault) -> dict:
        error = "server_error" if fault.status >= 500 else "temporarily_unavailable"
        return {"error": error, "error_description": HTTPStatus(fault.status).phrase}

    # -- dispatch ------------------------------------------------------------------

    def _route(self, req: Request) -> Reply:
        raise NotImplementedError

    def _handle(self, handler: Handler):
        req = Request.read(handler)
        with self._lock:
            self.calls.append((req.method, req.path))
        faults = self._take_faults(req.path)
        delay = self.latency + (faults["hang"].seconds if "hang" in faults else 0.0)
        if delay > 0 and self._stopping.wait(delay):
            handler.close_connection = True
            return
        try:
            if "fail" in faults:
                reply = self._fault_reply(req, faults["fail"])
            elif req.path == self.authorize_path and req.method in ("GET", "POST"):
                reply = self._authorize(req)
            elif req.path == self.token_path and req.method == "POST":
                reply = self._token(req)
            else:
                reply = self._route(req)
        except Exception as e:  # a bug in the fake must not look like a hang
            body = {"error": "fake_error", "error_description": repr(e)}
            reply = json_reply(500, body)
        send(handler, reply)
